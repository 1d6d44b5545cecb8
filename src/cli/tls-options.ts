import type { Command } from "commander";
import type { ClientTlsOptions } from "../toolkit/tls/client-tls.js";
import type { ServerTlsOptions } from "../toolkit/tls/server-tls.js";

/** TLS flags of the commands that call a server (`call`, `health`). */
export interface ClientTlsFlags {
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}

/** Help texts, shared by the commands that take these flags. */
export const CLIENT_TLS_HELP = {
  tls: "connect over TLS, trusting the system's CAs (implied by the other --tls-* flags)",
  tlsCa: "connect over TLS and verify the server's certificate with this PEM CA file",
  tlsCert: "PEM certificate to present (for servers that require client certificates)",
  tlsKey: "PEM private key of --tls-cert",
  tlsServerName: "name the server's certificate must carry (default: the host of --address)",
} as const;

/** ClientTlsOptions from `--tls*` flags; undefined (plaintext) when none is given. Exits with a usage error on a bad mix. */
export function clientTlsOf(flags: ClientTlsFlags, command: Command): ClientTlsOptions | undefined {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    command.error("error: --tls-cert and --tls-key go together: give both or neither");
  }
  const wanted = flags.tls === true || [flags.tlsCa, flags.tlsCert, flags.tlsServerName].some((flag) => flag !== undefined);
  if (!wanted) return undefined;
  return {
    ...(flags.tlsCa === undefined ? {} : { caFile: flags.tlsCa }),
    ...(flags.tlsCert === undefined ? {} : { certFile: flags.tlsCert }),
    ...(flags.tlsKey === undefined ? {} : { keyFile: flags.tlsKey }),
    ...(flags.tlsServerName === undefined ? {} : { serverName: flags.tlsServerName }),
  };
}

/** TLS flags of `serve`. */
export interface ServeTlsFlags {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsReloadInterval: number;
  userService?: string;
  clientCert?: string;
  clientKey?: string;
  userServiceCa?: string;
  userServiceServerName?: string;
}

export const SERVE_TLS_HELP = {
  tlsCert: "serve TLS with this PEM certificate (needs --tls-key); re-read while running",
  tlsKey: "PEM private key of --tls-cert",
  tlsCa: "require client certificates signed by this PEM CA (mTLS); needs --tls-cert",
  tlsReloadInterval: "how often the certificate files are re-read",
  clientCert: "PEM certificate this process presents when it calls --user-service (mTLS)",
  clientKey: "PEM private key of --client-cert",
  userServiceCa: "call --user-service over TLS, verifying it with this PEM CA (default: --tls-ca, else the system's CAs)",
  userServiceServerName: "name UserService's certificate must carry (default: the host of --user-service)",
} as const;

/**
 * The server's and the UserService channel's TLS settings from `serve`'s
 * flags. The channel to --user-service uses TLS when --client-cert,
 * --user-service-ca or --user-service-server-name is given; its CA is
 * --user-service-ca, else --tls-ca (one development CA signs everything),
 * else the system's CAs.
 */
export function serveTlsOf(
  flags: ServeTlsFlags,
  command: Command,
): { tls?: ServerTlsOptions; userServiceTls?: ClientTlsOptions } {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    command.error("error: --tls-cert and --tls-key go together: give both or neither");
  }
  if (flags.tlsCa !== undefined && flags.tlsCert === undefined) {
    command.error("error: --tls-ca (require client certificates) needs --tls-cert and --tls-key: mTLS runs over TLS");
  }
  if ((flags.clientCert === undefined) !== (flags.clientKey === undefined)) {
    command.error("error: --client-cert and --client-key go together: give both or neither");
  }
  const outbound = [flags.clientCert, flags.userServiceCa, flags.userServiceServerName].some((flag) => flag !== undefined);
  if (outbound && flags.userService === undefined) {
    command.error("error: --client-cert, --user-service-ca and --user-service-server-name set up the channel to --user-service, which is not given");
  }
  const caFile = flags.userServiceCa ?? flags.tlsCa;
  return {
    ...(flags.tlsCert !== undefined && flags.tlsKey !== undefined
      ? {
          tls: {
            certFile: flags.tlsCert,
            keyFile: flags.tlsKey,
            ...(flags.tlsCa === undefined ? {} : { clientCaFile: flags.tlsCa }),
            reloadIntervalMs: flags.tlsReloadInterval,
          },
        }
      : {}),
    ...(outbound
      ? {
          userServiceTls: {
            ...(caFile === undefined ? {} : { caFile }),
            ...(flags.clientCert === undefined ? {} : { certFile: flags.clientCert }),
            ...(flags.clientKey === undefined ? {} : { keyFile: flags.clientKey }),
            ...(flags.userServiceServerName === undefined ? {} : { serverName: flags.userServiceServerName }),
            reloadIntervalMs: flags.tlsReloadInterval,
          },
        }
      : {}),
  };
}

import * as grpc from "@grpc/grpc-js";
import type { ConnectionTls } from "../client/http2/connection.js";
import type { Logger } from "../log/logger.js";
import { readIdentity, WatchedCertificates } from "./watched-certificates.js";

/** How a client connects over TLS. */
export interface ClientTlsOptions {
  /**
   * PEM CA certificate(s) the server's certificate must chain to. Default:
   * the system's root CAs (then the files are read once, not reloaded).
   */
  readonly caFile?: string;
  /** PEM certificate this client presents (for servers that require mTLS); needs keyFile. */
  readonly certFile?: string;
  /** PEM private key of certFile, unencrypted. */
  readonly keyFile?: string;
  /**
   * The name the server's certificate must carry in its subjectAltName.
   * Default: the host of the target (a DNS name or an IP address).
   */
  readonly serverName?: string;
  /** How often the files are re-read. Default 60 s. */
  readonly reloadIntervalMs?: number;
}

/** Channel credentials that follow their files, and the watcher to stop. */
export interface ClientTls {
  readonly credentials: grpc.ChannelCredentials;
  /** Channel options that go with the credentials (the expected server name). */
  readonly channelOptions: grpc.ChannelOptions;
  /** The same trust, identity and server name for the lean node:http2 client. */
  readonly connectionTls: ConnectionTls;
  /** Stops re-reading the files; call after closing the channels. */
  close(): void;
}

/**
 * Reads and checks the client's certificate files and returns grpc-js channel
 * credentials that verify the server's certificate against the CA and its
 * name against `serverName` (or the target's host), and present the client's
 * own certificate when one is given. With a CA file, replaced files apply to
 * connections made after the next reload.
 */
export async function loadClientTls(options: ClientTlsOptions, logger?: Logger): Promise<ClientTls> {
  if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
    throw new Error("a client certificate needs its private key, and a key its certificate: give both files or neither");
  }
  const serverName = options.serverName;
  if (serverName !== undefined && serverName.trim() === "") throw new Error("the TLS server name must not be empty");
  // grpc-js sends serverName as SNI and checks the server's certificate
  // against it (node:tls checkServerIdentity) instead of the target's host.
  const channelOptions: grpc.ChannelOptions = serverName === undefined ? {} : { "grpc.ssl_target_name_override": serverName };

  if (options.caFile === undefined) {
    const identity =
      options.certFile !== undefined && options.keyFile !== undefined
        ? await readIdentity(options.certFile, options.keyFile, logger)
        : undefined;
    const credentials = grpc.credentials.createSsl(null, identity?.privateKey ?? null, identity?.certificate ?? null);
    const material = identity === undefined ? {} : { cert: identity.certificate, key: identity.privateKey };
    const connectionTls = { secureContext: () => material, ...(serverName === undefined ? {} : { serverName }) };
    return { credentials, channelOptions, connectionTls, close: () => {} };
  }

  const certificates = await WatchedCertificates.open(
    { caFile: options.caFile, certFile: options.certFile, keyFile: options.keyFile },
    { ...(options.reloadIntervalMs === undefined ? {} : { reloadIntervalMs: options.reloadIntervalMs }), ...(logger ? { logger } : {}) },
  );
  const credentials = grpc.experimental.createCertificateProviderChannelCredentials(
    certificates,
    options.certFile === undefined ? null : certificates,
  );
  const connectionTls = { secureContext: () => certificates.current(), ...(serverName === undefined ? {} : { serverName }) };
  return { credentials, channelOptions, connectionTls, close: () => certificates.close() };
}

import * as grpc from "@grpc/grpc-js";
import type { SecureContextOptions } from "node:tls";
import type { Logger } from "../log/logger.js";
import { WatchedCertificates } from "./watched-certificates.js";

/** How a server serves TLS. */
export interface ServerTlsOptions {
  /** PEM certificate (chain) the server presents. */
  readonly certFile: string;
  /** PEM private key of certFile, unencrypted. */
  readonly keyFile: string;
  /**
   * PEM CA certificate(s). When set, every client must present a certificate
   * signed by one of them (mTLS); connections without one are refused.
   */
  readonly clientCaFile?: string;
  /** How often the files are re-read, so rotated certificates apply without a restart. Default 60 s. */
  readonly reloadIntervalMs?: number;
}

/** Server credentials that follow their files, and the watcher to stop. */
export interface ServerTls {
  readonly credentials: grpc.ServerCredentials;
  /** True when clients must present a certificate. */
  readonly mutual: boolean;
  /**
   * For servers other than grpc-js (e.g. node:http2's createSecureServer):
   * the options to start with — the current certificates plus requestCert
   * and rejectUnauthorized set for mTLS.
   */
  secureServerOptions(): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean };
  /**
   * Calls `listener` with the new certificates after each reload, to pass to
   * `server.setSecureContext()`. Returns a function that stops it.
   */
  onReload(listener: (options: SecureContextOptions) => void): () => void;
  /** Stops re-reading the files. */
  close(): void;
}

/**
 * Reads and checks the server's certificate files (rejecting with an error
 * that names the file and the problem) and returns grpc-js credentials that
 * pick up replaced files within `reloadIntervalMs`. New connections get the
 * new certificate; connections already open keep theirs.
 */
export async function loadServerTls(options: ServerTlsOptions, logger?: Logger): Promise<ServerTls> {
  const certificates = await WatchedCertificates.open(
    { certFile: options.certFile, keyFile: options.keyFile, caFile: options.clientCaFile },
    { ...(options.reloadIntervalMs === undefined ? {} : { reloadIntervalMs: options.reloadIntervalMs }), ...(logger ? { logger } : {}) },
  );
  const mutual = options.clientCaFile !== undefined;
  // grpc-js 1.14 declares the parameters as (ca, identity | null, require),
  // but passes them on to CertificateProviderServerCredentials as
  // (identity, ca | null, require), which is what happens at run time: the
  // identity provider goes first, and a null CA provider means "no client
  // certificates". One provider serves both roles when mTLS is on.
  // test/e2e/tls.test.ts covers both shapes.
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(
    certificates,
    mutual ? certificates : null,
    mutual,
  );
  return {
    credentials,
    mutual,
    secureServerOptions: () => ({ ...certificates.current(), requestCert: mutual, rejectUnauthorized: mutual }),
    onReload: (listener) => certificates.onChange(() => listener(certificates.current())),
    close: () => certificates.close(),
  };
}

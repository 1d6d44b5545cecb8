import * as grpc from "@grpc/grpc-js";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import type { Logger } from "../log/logger.js";

type CertificateProvider = grpc.experimental.CertificateProvider;
type IdentityUpdate = grpc.experimental.IdentityCertificateUpdate;
type CaUpdate = grpc.experimental.CaCertificateUpdate;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;
type CaListener = grpc.experimental.CaCertificateUpdateListener;

/** PEM files to serve or present, and the CA to verify the other side with. */
export interface CertificateFiles {
  /** Certificate (chain) this side presents; needs keyFile. */
  readonly certFile?: string;
  /** Private key of certFile (unencrypted PEM). */
  readonly keyFile?: string;
  /** CA certificate(s) the other side's certificate must chain to. */
  readonly caFile?: string;
}

/** Default time between two reads of the certificate files. */
export const DEFAULT_RELOAD_INTERVAL_MS = 60_000;

/**
 * Certificates read from PEM files and re-read every `reloadIntervalMs`, as a
 * grpc-js CertificateProvider: the file watching is grpc-js's own
 * FileWatcherCertificateProvider. This wrapper adds what it lacks:
 *
 * - clear errors at startup (which file, what is wrong), instead of a server
 *   that silently drops every connection;
 * - a reload is checked before it is used: an unreadable file, a certificate
 *   whose key does not match (say, the certificate was replaced and the key
 *   not yet) or a broken PEM keeps the previous certificates and logs a
 *   warning, so a rotation half done never takes the listener down;
 * - listeners hear only of changes, each logged once.
 *
 * Call `close()` when done: the file watcher's timer keeps the process alive.
 */
export class WatchedCertificates implements CertificateProvider {
  readonly #files: CertificateFiles;
  readonly #logger: Logger | undefined;
  readonly #inner: grpc.experimental.FileWatcherCertificateProvider;
  readonly #identityListeners = new Set<IdentityListener>();
  readonly #caListeners = new Set<CaListener>();
  readonly #changeListeners = new Set<() => void>();
  #identity: IdentityUpdate | undefined;
  #ca: CaUpdate | undefined;
  #closed = false;

  private constructor(files: CertificateFiles, reloadIntervalMs: number, logger: Logger | undefined) {
    this.#files = files;
    this.#logger = logger;
    this.#inner = new grpc.experimental.FileWatcherCertificateProvider({
      certificateFile: files.certFile,
      privateKeyFile: files.keyFile,
      caCertificateFile: files.caFile,
      refreshIntervalMs: reloadIntervalMs,
    });
  }

  /**
   * Reads and checks the files, then watches them. Rejects with an error that
   * names the file and the problem when they cannot be used.
   */
  static async open(
    files: CertificateFiles,
    options: { readonly reloadIntervalMs?: number; readonly logger?: Logger } = {},
  ): Promise<WatchedCertificates> {
    if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
      throw new Error("a TLS certificate needs its private key, and a key its certificate: give both files or neither");
    }
    if (files.certFile === undefined && files.caFile === undefined) {
      throw new Error("no TLS files given: a certificate and key, a CA certificate, or both are needed");
    }
    const reloadIntervalMs = options.reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS;
    if (!Number.isFinite(reloadIntervalMs) || reloadIntervalMs <= 0) {
      throw new Error(`the TLS reload interval must be a positive number of milliseconds, not ${reloadIntervalMs}`);
    }
    const identity =
      files.certFile !== undefined && files.keyFile !== undefined
        ? await readIdentity(files.certFile, files.keyFile, options.logger)
        : undefined;
    const ca = files.caFile !== undefined ? await readCa(files.caFile) : undefined;

    const watched = new WatchedCertificates(files, reloadIntervalMs, options.logger);
    watched.#identity = identity;
    watched.#ca = ca;
    if (identity) options.logger?.info({ file: files.certFile, ...describe(identity.certificate) }, "TLS certificate loaded");
    watched.#inner.addIdentityCertificateListener(watched.#onIdentity);
    watched.#inner.addCaCertificateListener(watched.#onCa);
    return watched;
  }

  /** Stops watching the files. Credentials built on this provider keep their last certificates. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inner.removeIdentityCertificateListener(this.#onIdentity);
    this.#inner.removeCaCertificateListener(this.#onCa);
  }

  /** The certificates in use now, as node:tls options (`cert`, `key`, `ca` as given). */
  current(): { cert?: Buffer; key?: Buffer; ca?: Buffer } {
    return {
      ...(this.#identity ? { cert: this.#identity.certificate, key: this.#identity.privateKey } : {}),
      ...(this.#ca ? { ca: this.#ca.caCertificate } : {}),
    };
  }

  /** Calls `listener` after each accepted reload (of any file); returns a function that stops it. */
  onChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    if (this.#identity) process.nextTick(listener, this.#identity);
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    if (this.#ca) process.nextTick(listener, this.#ca);
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }

  readonly #onIdentity = (update: IdentityUpdate | null): void => {
    if (this.#closed || this.#files.certFile === undefined) return;
    const file = this.#files.certFile;
    if (update === null) {
      this.#logger?.warn({ file, keyFile: this.#files.keyFile }, "cannot re-read the TLS certificate or key; keeping the previous one");
      return;
    }
    const previous = this.#identity;
    if (previous && previous.certificate.equals(update.certificate) && previous.privateKey.equals(update.privateKey)) return;
    const problem = identityProblem(update);
    if (problem) {
      this.#logger?.warn({ file, keyFile: this.#files.keyFile, problem }, "new TLS certificate not usable; keeping the previous one");
      return;
    }
    this.#identity = update;
    this.#logger?.info({ file, ...describe(update.certificate) }, "TLS certificate reloaded");
    warnIfNotCurrent(this.#logger, file, update.certificate);
    for (const listener of this.#identityListeners) listener(update);
    for (const listener of this.#changeListeners) listener();
  };

  readonly #onCa = (update: CaUpdate | null): void => {
    if (this.#closed || this.#files.caFile === undefined) return;
    const file = this.#files.caFile;
    if (update === null) {
      this.#logger?.warn({ file }, "cannot re-read the TLS CA certificate; keeping the previous one");
      return;
    }
    if (this.#ca?.caCertificate.equals(update.caCertificate)) return;
    const problem = caProblem(update);
    if (problem) {
      this.#logger?.warn({ file, problem }, "new TLS CA certificate not usable; keeping the previous one");
      return;
    }
    this.#ca = update;
    this.#logger?.info({ file, ...describe(update.caCertificate) }, "TLS CA certificate reloaded");
    for (const listener of this.#caListeners) listener(update);
    for (const listener of this.#changeListeners) listener();
  };
}

/** Reads a certificate and its key, rejecting with an error that names the files when they cannot be served. */
export async function readIdentity(certFile: string, keyFile: string, logger?: Logger): Promise<IdentityUpdate> {
  const identity = { certificate: await readPem(certFile, "certificate"), privateKey: await readPem(keyFile, "private key") };
  const problem = identityProblem(identity);
  if (problem) throw new Error(`cannot use TLS certificate ${certFile} with key ${keyFile}: ${problem}`);
  warnIfNotCurrent(logger, certFile, identity.certificate);
  return identity;
}

/** Reads CA certificates, rejecting with an error that names the file when they cannot be used. */
export async function readCa(caFile: string): Promise<CaUpdate> {
  const ca = { caCertificate: await readPem(caFile, "CA certificate") };
  const problem = caProblem(ca);
  if (problem) throw new Error(`cannot use TLS CA certificate ${caFile}: ${problem}`);
  return ca;
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (error as Error).message;
    throw new Error(`cannot read the TLS ${what} file ${file}: ${reason}`);
  }
}

/** Why a certificate and key cannot be served together; undefined when they can. */
function identityProblem(update: IdentityUpdate): string | undefined {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(update.certificate);
  } catch {
    return "the certificate file does not hold a PEM certificate";
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(update.privateKey))) {
      return "the private key does not belong to the certificate";
    }
  } catch {
    return "the key file does not hold an unencrypted PEM private key";
  }
  try {
    createSecureContext({ cert: update.certificate, key: update.privateKey });
  } catch (error) {
    return `OpenSSL refuses the pair: ${(error as Error).message}`;
  }
  return undefined;
}

function caProblem(update: CaUpdate): string | undefined {
  try {
    new X509Certificate(update.caCertificate);
    createSecureContext({ ca: update.caCertificate });
  } catch {
    return "the file does not hold a PEM CA certificate";
  }
  return undefined;
}

/** Public facts of a certificate, for log lines (never key material). */
function describe(pem: Buffer): { subject: string; serial: string; subjectAltName?: string; validTo: string } {
  const certificate = new X509Certificate(pem);
  return {
    subject: certificate.subject.replace(/\n/g, ", "),
    serial: certificate.serialNumber,
    ...(certificate.subjectAltName === undefined ? {} : { subjectAltName: certificate.subjectAltName }),
    validTo: new Date(certificate.validTo).toISOString(),
  };
}

function warnIfNotCurrent(logger: Logger | undefined, file: string | undefined, pem: Buffer): void {
  const certificate = new X509Certificate(pem);
  const now = Date.now();
  if (Date.parse(certificate.validTo) < now) logger?.warn({ file, validTo: certificate.validTo }, "TLS certificate has expired");
  else if (Date.parse(certificate.validFrom) > now) logger?.warn({ file, validFrom: certificate.validFrom }, "TLS certificate is not valid yet");
}

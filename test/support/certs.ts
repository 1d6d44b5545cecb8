// Real certificates for the TLS tests: made by the dev-cert code (which runs
// openssl) or by plain openssl commands, in temporary directories.
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { createDevCertificates, type DevCertificateFiles } from "../../src/toolkit/tls/dev-certs.js";

const run = promisify(execFile);

/** The client identity the dev certificates carry by default (OrderService's). */
export const ORDER_SERVICE_ID = "spiffe://switchyard/order-service";

/** A CA with a server and a client certificate, in its own directory. */
export interface CertSet extends DevCertificateFiles {
  readonly dir: string;
}

/** Something that runs clean-up when a test or a describe block ends. */
export interface Scope {
  after(fn: () => unknown): void;
}

/** A temporary directory removed when the scope ends. */
export async function certDir(scope: Scope, prefix = "switchyard-certs-"): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  scope.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh development CA with server and client certificates (openssl, through createDevCertificates). */
export async function makeCertSet(
  scope: Scope,
  options: { readonly serverNames?: readonly string[]; readonly clientNames?: readonly string[] } = {},
): Promise<CertSet> {
  const dir = await certDir(scope);
  const files = await createDevCertificates({
    outDir: dir,
    clientNames: options.clientNames ?? [ORDER_SERVICE_ID, "order-service"],
    ...(options.serverNames === undefined ? {} : { serverNames: options.serverNames }),
  });
  return { dir, ...files };
}

/**
 * A self-signed RSA server certificate made the way a README on the internet
 * would have it: one `openssl req -x509 -newkey rsa:2048` command. It is its
 * own CA.
 */
export async function makeOpensslSelfSigned(scope: Scope): Promise<{ cert: string; key: string }> {
  const dir = await certDir(scope, "switchyard-openssl-");
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  await run("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
    "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext", "basicConstraints=critical,CA:TRUE",
  ]);
  return { cert, key };
}

/** The serial number of a PEM certificate file, as node:crypto prints it. */
export async function serialOf(certFile: string): Promise<string> {
  return new X509Certificate(await fs.readFile(certFile)).serialNumber;
}

/**
 * The serial number of the certificate a TLS server presents on a new
 * connection (ALPN h2, as a gRPC client would connect; not verified).
 */
export function servedSerial(port: number, host = "127.0.0.1"): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, ALPNProtocols: ["h2"], rejectUnauthorized: false, servername: "localhost" }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.once("error", reject);
  });
}

/** Replaces a file by writing a temporary sibling and renaming it over the original, as rotation tools do. */
export async function replaceFile(target: string, source: string): Promise<void> {
  const temporary = `${target}.${process.pid}.tmp`;
  await fs.copyFile(source, temporary);
  await fs.rename(temporary, target);
}

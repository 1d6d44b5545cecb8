import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, chmod, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import path from "node:path";

/** Options for createDevCertificates. */
export interface DevCertificateOptions {
  /** Directory the files are written to; created when missing. */
  readonly outDir: string;
  /** subjectAltNames of the server certificate. Default localhost, 127.0.0.1 and ::1. */
  readonly serverNames?: readonly string[];
  /**
   * subjectAltNames of the client certificate: the identity it proves under
   * mTLS. A name with `://` becomes a URI SAN (e.g. a SPIFFE ID), an IP
   * address an IP SAN, anything else a DNS SAN.
   */
  readonly clientNames: readonly string[];
  /** Validity of the server and client certificates, in days. Default 365; the CA gets ten times that. */
  readonly days?: number;
  /** Replace files already in outDir. Default false: refuse. */
  readonly overwrite?: boolean;
  /** The openssl binary. Default `openssl` on PATH. */
  readonly openssl?: string;
}

/** Paths of the files createDevCertificates wrote. */
export interface DevCertificateFiles {
  readonly ca: string;
  readonly caKey: string;
  readonly server: string;
  readonly serverKey: string;
  readonly client: string;
  readonly clientKey: string;
}

/** File names, in the order they are moved into place (each key before its certificate). */
const FILE_NAMES = {
  caKey: "ca-key.pem",
  ca: "ca.pem",
  serverKey: "server-key.pem",
  server: "server.pem",
  clientKey: "client-key.pem",
  client: "client.pem",
} as const satisfies Record<keyof DevCertificateFiles, string>;

export const DEFAULT_SERVER_NAMES: readonly string[] = ["localhost", "127.0.0.1", "::1"];

/** Raised when openssl is missing or fails; the message says what to do. */
export class DevCertificateError extends Error {
  override readonly name = "DevCertificateError";
}

/**
 * Makes a development CA and a server and a client certificate signed by it
 * (ECDSA P-256, SHA-256), by running `openssl`. Everything is made in a
 * private temporary directory inside outDir and then renamed into place, keys
 * first, so a server reloading these files never sees a half-written set.
 * Private keys get mode 0600. For development only: the CA key sits next to
 * the certificates it signs.
 */
export async function createDevCertificates(options: DevCertificateOptions): Promise<DevCertificateFiles> {
  const serverNames = options.serverNames ?? DEFAULT_SERVER_NAMES;
  const days = options.days ?? 365;
  if (!Number.isInteger(days) || days <= 0) throw new DevCertificateError(`days must be a positive whole number, not ${days}`);
  if (serverNames.length === 0) throw new DevCertificateError("the server certificate needs at least one name");
  if (options.clientNames.length === 0) throw new DevCertificateError("the client certificate needs at least one name");
  const serverSans = serverNames.map(toSan).join(", ");
  const clientSans = options.clientNames.map(toSan).join(", ");

  const outDir = path.resolve(options.outDir);
  const files = Object.fromEntries(
    Object.entries(FILE_NAMES).map(([key, name]) => [key, path.join(outDir, name)]),
  ) as unknown as DevCertificateFiles;
  await mkdir(outDir, { recursive: true });
  if (!options.overwrite) {
    const existing: string[] = [];
    for (const file of Object.values(files)) if (await exists(file)) existing.push(file);
    if (existing.length > 0) {
      throw new DevCertificateError(`${existing.join(", ")} already exist${existing.length === 1 ? "s" : ""}; pass --force to replace them`);
    }
  }

  const openssl = options.openssl ?? "openssl";
  const work = await mkdtemp(path.join(outDir, ".certs-"));
  try {
    const at = (name: string): string => path.join(work, name);
    await writeFile(
      at("openssl.cnf"),
      [
        "[req]",
        "distinguished_name = dn",
        "[dn]",
        "[ca_ext]",
        "basicConstraints = critical, CA:TRUE, pathlen:0",
        "keyUsage = critical, keyCertSign, cRLSign",
        "subjectKeyIdentifier = hash",
        "[server_ext]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature",
        "extendedKeyUsage = serverAuth",
        `subjectAltName = ${serverSans}`,
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid",
        "[client_ext]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature",
        "extendedKeyUsage = clientAuth",
        `subjectAltName = ${clientSans}`,
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid",
        "",
      ].join("\n"),
    );
    const config = at("openssl.cnf");
    const run = (args: readonly string[]): Promise<string> => runOpenssl(openssl, args);

    for (const key of ["caKey", "serverKey", "clientKey"] as const) {
      const pem = await run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
      await writeFile(at(FILE_NAMES[key]), pem, { mode: 0o600 });
      await chmod(at(FILE_NAMES[key]), 0o600);
    }
    await run([
      "req", "-x509", "-new", "-sha256", "-config", config, "-extensions", "ca_ext",
      "-key", at(FILE_NAMES.caKey), "-subj", "/O=Switchyard development/CN=Switchyard development CA",
      "-days", String(days * 10), "-set_serial", serial(), "-out", at(FILE_NAMES.ca),
    ]);
    for (const [leaf, extensions, commonName] of [
      ["server", "server_ext", serverNames[0]],
      ["client", "client_ext", options.clientNames.find((name) => !name.includes("://")) ?? "switchyard client"],
    ] as const) {
      const csr = at(`${leaf}.csr`);
      await run([
        "req", "-new", "-sha256", "-config", config,
        "-key", at(FILE_NAMES[`${leaf}Key`]), "-subj", `/O=Switchyard development/CN=${escapeSubject(commonName ?? leaf)}`, "-out", csr,
      ]);
      await run([
        "x509", "-req", "-sha256", "-in", csr, "-CA", at(FILE_NAMES.ca), "-CAkey", at(FILE_NAMES.caKey),
        "-set_serial", serial(), "-days", String(days), "-extfile", config, "-extensions", extensions,
        "-out", at(FILE_NAMES[leaf]),
      ]);
    }
    for (const [key, name] of Object.entries(FILE_NAMES)) await rename(at(name), files[key as keyof DevCertificateFiles]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return files;
}

/** One subjectAltName in openssl's config syntax. */
function toSan(name: string): string {
  if (name.includes("://")) {
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s,"]+$/.test(name)) throw new DevCertificateError(`"${name}" is not a usable URI name`);
    return `URI:${name}`;
  }
  if (isIP(name) !== 0) return `IP:${name}`;
  if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) {
    throw new DevCertificateError(`"${name}" is neither a DNS name, an IP address nor a URI`);
  }
  return `DNS:${name}`;
}

function escapeSubject(value: string): string {
  return value.replace(/[/\\+=,]/g, (c) => `\\${c}`);
}

/** A random positive 127-bit serial number, as openssl's -set_serial takes it. */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x10;
  return `0x${bytes.toString("hex")}`;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

function runOpenssl(openssl: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(openssl, args, { encoding: "utf8", timeout: 30_000 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return reject(
          new DevCertificateError(
            `cannot run "${openssl}": it is not installed or not on PATH. Install OpenSSL (e.g. apt-get install openssl, brew install openssl), ` +
              "or make the certificates with another tool and pass them with --tls-cert, --tls-key and --tls-ca",
          ),
        );
      }
      const detail = stderr.trim().split("\n").slice(-3).join(" | ") || error.message;
      reject(new DevCertificateError(`openssl ${args[0] ?? ""} failed: ${detail}`));
    });
  });
}

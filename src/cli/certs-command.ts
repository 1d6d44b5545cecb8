import { InvalidArgumentError, type Command } from "commander";
import path from "node:path";
import { createDevCertificates, DEFAULT_SERVER_NAMES } from "../toolkit/tls/dev-certs.js";

interface DevFlags {
  out: string;
  serverNames: string[];
  clientNames: string[];
  days: number;
  force?: boolean;
}

/** OrderService's identity in the development certificates: what it proves to UserService under mTLS. */
export const DEV_CLIENT_NAMES: readonly string[] = ["spiffe://switchyard/order-service", "order-service"];

/** `switchyard certs dev --out DIR`: a development CA plus server and client certificates, made with openssl. */
export function addCertsCommand(program: Command): void {
  const certs = program.command("certs").description("make certificates for TLS and mTLS");
  certs
    .command("dev")
    .description("create a development CA and a server and a client certificate signed by it (needs openssl)")
    .requiredOption("--out <dir>", "directory to write ca.pem, ca-key.pem, server.pem, server-key.pem, client.pem, client-key.pem")
    .option("--server-names <list>", "subjectAltNames of the server certificate", parseNames, [...DEFAULT_SERVER_NAMES])
    .option("--client-names <list>", "subjectAltNames of the client certificate (its mTLS identity)", parseNames, [...DEV_CLIENT_NAMES])
    .option("--days <n>", "validity of the server and client certificates", parseDays, 365)
    .option("--force", "replace certificates already in the directory")
    .action(async (flags: DevFlags, command: Command) => {
      try {
        const files = await createDevCertificates({
          outDir: flags.out,
          serverNames: flags.serverNames,
          clientNames: flags.clientNames,
          days: flags.days,
          overwrite: flags.force === true,
        });
        const shown = (file: string): string => {
          const relative = path.relative(process.cwd(), file);
          return relative === "" || relative.startsWith("..") ? file : relative;
        };
        process.stdout.write(
          [
            `wrote a development CA and certificates to ${shown(path.dirname(files.ca))}:`,
            `  ${shown(files.ca)}  ${shown(files.caKey)}   (CA; keep the key private)`,
            `  ${shown(files.server)}  ${shown(files.serverKey)}   (server: ${flags.serverNames.join(", ")})`,
            `  ${shown(files.client)}  ${shown(files.clientKey)}   (client: ${flags.clientNames.join(", ")})`,
            "serve with mTLS:",
            `  switchyard serve --tls-cert ${shown(files.server)} --tls-key ${shown(files.serverKey)} --tls-ca ${shown(files.ca)}`,
            "call it:",
            `  switchyard health --tls-ca ${shown(files.ca)} --tls-cert ${shown(files.client)} --tls-key ${shown(files.clientKey)}`,
            "",
          ].join("\n"),
        );
      } catch (error) {
        // DevCertificateError says what to do; file system errors name the path.
        command.error(`error: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
}

function parseNames(value: string): string[] {
  const names = value
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  if (names.length === 0) throw new InvalidArgumentError("expected a comma-separated list of names");
  return names;
}

function parseDays(value: string): number {
  const days = Number(value);
  if (!/^\d+$/.test(value) || days <= 0 || days > 36_500) throw new InvalidArgumentError("expected a number of days between 1 and 36500");
  return days;
}

import type { Command } from "commander";
import { OrderServiceDefinition, UserServiceDefinition } from "../gen/service/v1/service.js";
import { createGrpcTransport } from "../toolkit/client/grpc-js-transport.js";
import { ClientError } from "../toolkit/rpc/client-error.js";
import { Code } from "../toolkit/rpc/code.js";
import type { MethodDefinition, ServiceDefinition } from "../toolkit/rpc/definition.js";
import { loadClientTls } from "../toolkit/tls/client-tls.js";
import { parseMillis, parseTarget } from "./options.js";
import { CLIENT_TLS_HELP, clientTlsOf, type ClientTlsFlags } from "./tls-options.js";
import { CALL_TOKEN_HELP, callTokenOf, type CallTokenFlags } from "./auth-options.js";

const SERVICES: readonly ServiceDefinition[] = [UserServiceDefinition, OrderServiceDefinition];

interface CallFlags extends ClientTlsFlags, CallTokenFlags {
  address: string;
  timeout: number;
}

/**
 * `switchyard call Service/Method '<json>'`: JSON in, JSON out. On an error
 * status it prints the status as JSON to stderr and exits with 64 + the code
 * (as grpcurl does), so scripts can tell NOT_FOUND from UNAVAILABLE.
 */
export function addCallCommand(program: Command): void {
  program
    .command("call")
    .description("call one method with a JSON request and print the JSON response")
    .argument("<method>", `e.g. UserService/GetUser; one of: ${methodNames().join(", ")}`)
    .argument("[json]", "the request as JSON (proto field names or lowerCamelCase)", "{}")
    .option("-a, --address <address>", "server address", parseTarget, "localhost:50051")
    .option("--timeout <ms>", "deadline of the call", parseMillis, 5_000)
    .option("--tls", CLIENT_TLS_HELP.tls)
    .option("--tls-ca <file>", CLIENT_TLS_HELP.tlsCa)
    .option("--tls-cert <file>", CLIENT_TLS_HELP.tlsCert)
    .option("--tls-key <file>", CLIENT_TLS_HELP.tlsKey)
    .option("--tls-server-name <name>", CLIENT_TLS_HELP.tlsServerName)
    .option("--token <jwt>", CALL_TOKEN_HELP.token)
    .option("--token-file <file>", CALL_TOKEN_HELP.tokenFile)
    .action(async (name: string, json: string, flags: CallFlags, command: Command) => {
      const found = findMethod(name);
      if (found === undefined) command.error(`error: unknown method "${name}"; expected one of: ${methodNames().join(", ")}`);
      const [service, method] = found;
      let body: unknown;
      try {
        body = JSON.parse(json);
      } catch (error) {
        command.error(`error: the request is not valid JSON: ${(error as Error).message}`);
      }
      if (typeof body !== "object" || body === null || Array.isArray(body)) command.error("error: the request must be a JSON object");
      const unknownFields = unknownKeys(method, body as Record<string, unknown>);
      if (unknownFields.length > 0) command.error(`error: ${method.name} has no field ${unknownFields.join(", ")}`);

      const token = callTokenOf(flags, command);
      const tlsOptions = clientTlsOf(flags, command);
      const tls = tlsOptions && (await loadClientTls(tlsOptions).catch((error: Error) => command.error(`error: ${error.message}`)));
      const transport = createGrpcTransport({ target: flags.address, services: [service], ...(tls ? { credentials: tls.credentials, channelOptions: tls.channelOptions } : {}) });
      try {
        const response = await transport.unary(service, method, method.requestType.fromJSON(body), {
          deadline: Date.now() + flags.timeout,
          cancellation: undefined,
          metadata: token === undefined ? undefined : { authorization: `Bearer ${token}` },
          observer: undefined,
        });
        process.stdout.write(`${JSON.stringify(method.responseType.toJSON(response), null, 2)}\n`);
      } catch (error) {
        if (!(error instanceof ClientError)) throw error;
        const status = {
          code: Code[error.code],
          message: error.message,
          ...(error.reason === undefined ? {} : { reason: error.reason }),
          ...(error.fieldViolations.length === 0 ? {} : { fieldViolations: error.fieldViolations }),
        };
        process.stderr.write(`${JSON.stringify(status, null, 2)}\n`);
        process.exitCode = 64 + error.code;
      } finally {
        transport.close();
        tls?.close();
      }
    });
}

function findMethod(name: string): [ServiceDefinition, MethodDefinition<unknown, unknown>] | undefined {
  const [serviceName, methodName] = name.replace(/^\//, "").split("/");
  for (const service of SERVICES) {
    if (serviceName !== service.name && serviceName !== service.fullName) continue;
    const method = Object.values(service.methods).find((m) => m.name === methodName);
    if (method) return [service, method];
  }
  return undefined;
}

function methodNames(): string[] {
  return SERVICES.flatMap((service) => Object.values(service.methods).map((method) => `${service.name}/${method.name}`));
}

/** Keys the message does not have, in either proto (snake_case) or JSON (lowerCamelCase) spelling. */
function unknownKeys(method: MethodDefinition<unknown, unknown>, body: Record<string, unknown>): string[] {
  const known = new Set(Object.keys(method.requestType.decode(new Uint8Array()) as object));
  const camel = (key: string): string => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return Object.keys(body).filter((key) => !known.has(camel(key)));
}

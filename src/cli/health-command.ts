import * as grpc from "@grpc/grpc-js";
import type { Command } from "commander";
import { HealthCheckResponse_ServingStatus as ServingStatus, HealthDefinition, type HealthCheckResponse } from "../gen/grpc/health/v1/health.js";
import { toGrpcJsDefinition } from "../toolkit/rpc/grpc-js-definition.js";
import { loadClientTls } from "../toolkit/tls/client-tls.js";
import { parseMillis, parseTarget } from "./options.js";
import { CLIENT_TLS_HELP, clientTlsOf, type ClientTlsFlags } from "./tls-options.js";

interface HealthFlags extends ClientTlsFlags {
  address: string;
  timeout: number;
}

/** `switchyard health [service]`: asks grpc.health.v1; exits 0 only when SERVING. */
export function addHealthCommand(program: Command): void {
  program
    .command("health")
    .description("check a server's health (overall, or one service such as service.UserService)")
    .argument("[service]", "fully qualified service name; empty for the whole server", "")
    .option("-a, --address <address>", "server address", parseTarget, "localhost:50051")
    .option("--timeout <ms>", "deadline of the check", parseMillis, 3_000)
    .option("--tls", CLIENT_TLS_HELP.tls)
    .option("--tls-ca <file>", CLIENT_TLS_HELP.tlsCa)
    .option("--tls-cert <file>", CLIENT_TLS_HELP.tlsCert)
    .option("--tls-key <file>", CLIENT_TLS_HELP.tlsKey)
    .option("--tls-server-name <name>", CLIENT_TLS_HELP.tlsServerName)
    .action(async (serviceName: string, flags: HealthFlags, command: Command) => {
      const tlsOptions = clientTlsOf(flags, command);
      const tls = tlsOptions && (await loadClientTls(tlsOptions).catch((error: Error) => command.error(`error: ${error.message}`)));
      const service = toGrpcJsDefinition(HealthDefinition);
      const Health = grpc.makeGenericClientConstructor(service, "Health");
      const client = new Health(flags.address, tls ? tls.credentials : grpc.credentials.createInsecure(), tls?.channelOptions);
      const check = service["check"] as grpc.MethodDefinition<unknown, HealthCheckResponse>;
      try {
        const status = await new Promise<string>((resolve, reject) => {
          client.makeUnaryRequest(
            check.path,
            check.requestSerialize,
            check.responseDeserialize,
            { service: serviceName },
            new grpc.Metadata(),
            { deadline: Date.now() + flags.timeout },
            (error, response) => (error ? reject(error) : resolve(ServingStatus[response?.status ?? ServingStatus.UNKNOWN] ?? "UNKNOWN")),
          );
        });
        process.stdout.write(`${status}\n`);
        process.exitCode = status === "SERVING" ? 0 : 1;
      } catch (error) {
        const { code, details } = error as grpc.ServiceError;
        process.stderr.write(`health check failed: ${grpc.status[code] ?? code}: ${details}\n`);
        process.exitCode = 2;
      } finally {
        client.close();
        tls?.close();
      }
    });
}

import * as grpc from "@grpc/grpc-js";
import type { Command } from "commander";
import { service as healthService } from "grpc-health-check";
import { parseMillis, parseTarget } from "./options.js";

interface HealthFlags {
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
    .action(async (serviceName: string, flags: HealthFlags) => {
      const Health = grpc.makeGenericClientConstructor(healthService, "Health");
      const client = new Health(flags.address, grpc.credentials.createInsecure());
      const check = healthService["Check"];
      if (check === undefined) throw new Error("grpc-health-check has no Check method");
      try {
        const status = await new Promise<string>((resolve, reject) => {
          client.makeUnaryRequest(
            check.path,
            check.requestSerialize,
            check.responseDeserialize,
            { service: serviceName },
            new grpc.Metadata(),
            { deadline: Date.now() + flags.timeout },
            (error, response) => (error ? reject(error) : resolve(String((response as { status?: unknown }).status))),
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
      }
    });
}

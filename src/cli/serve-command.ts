import type { Command } from "commander";
import { startSwitchyard, type ServiceName } from "../app/switchyard.js";
import { createLogger } from "../toolkit/log/logger.js";
import { parseDatabaseUrl, parseLogLevel, parseMillis, parsePort, parseServices, parseTarget } from "./options.js";

interface ServeFlags {
  port: number;
  host: string;
  dataDir: string;
  services: ServiceName[];
  userService?: string;
  databaseUrl?: string;
  drainTimeout: number;
  logLevel: string;
}

/** `switchyard serve`: hosts the services until SIGTERM or SIGINT, then drains and exits 0. */
export function addServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run UserService and OrderService (both on one port by default)")
    .option("-p, --port <port>", "port to listen on", parsePort, 50051)
    .option("--host <host>", "interface to bind", "0.0.0.0")
    .option("--data-dir <dir>", "directory of the SQLite files", "./data")
    .option("--services <list>", "services this process hosts: user, order or user,order", parseServices, ["user", "order"])
    .option("--user-service <address>", "where OrderService finds UserService (default: in this process)", parseTarget)
    .option("--database-url <url>", "keep data in PostgreSQL (postgres://…) instead of SQLite", parseDatabaseUrl)
    .option("--drain-timeout <ms>", "how long shutdown waits for calls in flight", parseMillis, 10_000)
    .option("--log-level <level>", "fatal, error, warn, info, debug, trace or silent", parseLogLevel, "info")
    .action(async (flags: ServeFlags) => {
      if (flags.services.includes("order") && !flags.services.includes("user") && flags.userService === undefined) {
        program.error("error: --services order needs --user-service <address> (where UserService runs)");
      }
      const logger = createLogger({ level: flags.logLevel });
      const app = await startSwitchyard({
        services: flags.services,
        host: flags.host,
        port: flags.port,
        dataDir: flags.dataDir,
        ...(flags.databaseUrl === undefined ? {} : { databaseUrl: flags.databaseUrl }),
        ...(flags.userService === undefined ? {} : { userServiceTarget: flags.userService }),
        drainTimeoutMs: flags.drainTimeout,
        logger,
      }).catch((error: unknown) => {
        logger.fatal({ err: error }, "could not start");
        process.exit(1);
      });
      logger.info(
        {
          address: `${flags.host}:${app.port}`,
          services: flags.services,
          store: app.store,
          userService: flags.userService ?? (flags.services.includes("order") ? "in-process" : undefined),
        },
        `switchyard listening on ${flags.host}:${app.port}`,
      );
      let stopping = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) {
          logger.warn({ signal }, "second signal: exiting without waiting");
          process.exit(1);
        }
        stopping = true;
        logger.info({ signal }, "shutting down: draining calls in flight");
        app.close().then(
          () => {
            logger.info("stopped");
            process.exit(0);
          },
          (error: unknown) => {
            logger.error({ err: error }, "shutdown failed");
            process.exit(1);
          },
        );
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    });
}

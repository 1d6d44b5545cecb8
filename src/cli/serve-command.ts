import cluster from "node:cluster";
import { type Command, Option } from "commander";
import type { ServiceName } from "../app/switchyard.js";
import { onStopRequest, reportReady, runWorkerCluster, workerId } from "../app/worker-cluster.js";
import { createLogger, type Logger } from "../toolkit/log/logger.js";
import { startClusterMetricsServer } from "../toolkit/telemetry/cluster-metrics.js";
import { parseDatabaseUrl, parseLogFormat, parseLogLevel, parseMillis, parsePort, parseServices, parseTarget } from "./options.js";
import { collect, parsePositiveInteger, SERVE_AUTH_HELP, serveAuthOf, type ServeAuthFlags } from "./auth-options.js";
import { SERVE_TLS_HELP, serveTlsOf, type ServeTlsFlags } from "./tls-options.js";
import {
  parseAdvertiseAddress,
  parseRegistry,
  parseTtlSeconds,
  SERVE_REGISTRY_HELP,
  serveRegistryOf,
  type ServeRegistryFlags,
} from "./registry-options.js";
import {
  parseOtlpEndpoint,
  parseSampleRatio,
  SERVE_TELEMETRY_HELP,
  serveTelemetryOf,
  type ServeTelemetryFlags,
} from "./telemetry-options.js";

interface ServeFlags extends ServeTlsFlags, ServeTelemetryFlags, ServeRegistryFlags, ServeAuthFlags {
  engine: "grpc-js" | "http2";
  clientEngine?: "grpc-js" | "http2";
  port: number;
  host: string;
  dataDir: string;
  services: ServiceName[];
  userService?: string;
  userServiceHedgeAfter?: number;
  userServiceTunnel: boolean;
  databaseUrl?: string;
  memory?: boolean;
  drainTimeout: number;
  maxConcurrentCalls: number;
  workers: number;
  logLevel: string;
  logFormat: "json" | "pretty" | "auto";
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
    .option(
      "--user-service-hedge-after <ms>",
      "send a second copy of a GetUser call to --user-service that has had no answer for this long; the first answer wins (default: off)",
      parseMillis,
    )
    .option(
      "--no-user-service-tunnel",
      "send each call to --user-service on an HTTP/2 stream of its own, not through a call tunnel (the http2 client's default)",
    )
    .option("--database-url <url>", "keep data in PostgreSQL (postgres://…) instead of SQLite", parseDatabaseUrl)
    .option("--memory", "keep data in memory instead, lost at exit (tests, demos, benchmarks)")
    .option("--drain-timeout <ms>", "how long shutdown waits for calls in flight", parseMillis, 10_000)
    .option("--workers <n>", "processes sharing the port, e.g. one per core (node:cluster)", parsePositiveInteger, 1)
    .option("--log-level <level>", "fatal, error, warn, info, debug, trace or silent", parseLogLevel, "info")
    .option("--log-format <format>", "json, pretty, or auto (pretty on a terminal)", parseLogFormat, "auto")
    .addOption(
      new Option("--engine <engine>", "gRPC implementation of the server and of the channel to --user-service: http2 (lean, on node:http2) or grpc-js (@grpc/grpc-js)")
        .choices(["http2", "grpc-js"])
        .default("http2"),
    )
    .addOption(
      new Option("--client-engine <engine>", "gRPC implementation of the channel to --user-service alone (default: --engine's)").choices(["http2", "grpc-js"]),
    )
    .option("--tls-cert <file>", SERVE_TLS_HELP.tlsCert)
    .option("--tls-key <file>", SERVE_TLS_HELP.tlsKey)
    .option("--tls-ca <file>", SERVE_TLS_HELP.tlsCa)
    .option("--tls-reload-interval <ms>", SERVE_TLS_HELP.tlsReloadInterval, parseMillis, 60_000)
    .option("--client-cert <file>", SERVE_TLS_HELP.clientCert)
    .option("--client-key <file>", SERVE_TLS_HELP.clientKey)
    .option("--user-service-ca <file>", SERVE_TLS_HELP.userServiceCa)
    .option("--user-service-server-name <name>", SERVE_TLS_HELP.userServiceServerName)
    .option("--otlp-endpoint <url>", SERVE_TELEMETRY_HELP.otlpEndpoint, parseOtlpEndpoint)
    .option("--trace-sample-ratio <ratio>", SERVE_TELEMETRY_HELP.traceSampleRatio, parseSampleRatio, 1)
    .option("--metrics-port <port>", SERVE_TELEMETRY_HELP.metricsPort, parsePort)
    .option("--registry <url>", SERVE_REGISTRY_HELP.registry, parseRegistry)
    .option("--advertise-address <host[:port]>", SERVE_REGISTRY_HELP.advertiseAddress, parseAdvertiseAddress)
    .option("--registry-ttl <seconds>", SERVE_REGISTRY_HELP.registryTtl, parseTtlSeconds, 10)
    .addOption(new Option("--profile <profile>", SERVE_AUTH_HELP.profile).choices(["development", "production"]).default("development"))
    .option("--jwt-secret-file <file>", SERVE_AUTH_HELP.jwtSecretFile)
    .option("--jwt-public-key-file <file>", SERVE_AUTH_HELP.jwtPublicKeyFile, collect)
    .option("--jwks-file <file>", SERVE_AUTH_HELP.jwksFile)
    .option("--jwt-issuer <iss>", SERVE_AUTH_HELP.jwtIssuer)
    .option("--jwt-audience <aud>", SERVE_AUTH_HELP.jwtAudience)
    .option("--max-deadline <ms>", SERVE_AUTH_HELP.maxDeadline, parseMillis, 60_000)
    .option(
      "--max-concurrent-calls <n>",
      "calls this process works on at once, over all connections; more are refused at once with RESOURCE_EXHAUSTED (load shedding)",
      parsePositiveInteger,
      1_000,
    )
    .option("--max-concurrent-streams <n>", SERVE_AUTH_HELP.maxConcurrentStreams, parsePositiveInteger, 100)
    .option("--max-metadata-size <bytes>", SERVE_AUTH_HELP.maxMetadataSize, parsePositiveInteger, 16 * 1024)
    .action(async (flags: ServeFlags, command: Command) => {
      if (flags.services.includes("order") && !flags.services.includes("user") && flags.userService === undefined) {
        command.error("error: --services order needs --user-service <address> (where UserService runs)");
      }
      if (flags.memory === true && flags.databaseUrl !== undefined) command.error("error: choose one of --memory and --database-url");
      if (flags.userServiceHedgeAfter !== undefined && flags.userService === undefined) {
        command.error("error: --user-service-hedge-after hedges calls to --user-service <address>; in process there is nothing to hedge");
      }
      const tls = serveTlsOf(flags, command);
      const { metricsPort, ...telemetry } = serveTelemetryOf(flags, command);
      // A worker's metrics are served by the cluster's primary, on the flag's port.
      const metrics = metricsPort === undefined ? {} : workerId() === undefined ? { metricsPort } : { clusterMetrics: true };
      const registry = serveRegistryOf(flags, command);
      const access = serveAuthOf(flags, command);
      const format = flags.logFormat === "auto" ? (process.stderr.isTTY ? "pretty" : "json") : flags.logFormat;
      const rootLogger = createLogger({ level: flags.logLevel, format });
      // Every line of a worker says which one wrote it.
      const logger = workerId() === undefined ? rootLogger : rootLogger.child({ worker: workerId() });
      if (flags.workers > 1) {
        if (flags.memory === true) command.error("error: --memory keeps data in each process; it cannot be shared by --workers");
        if (cluster.isPrimary) return superviseWorkers(flags, logger);
      }
      // Loaded here, not at the top: `call`, `health` and `--help` then start
      // without the stores, drivers and telemetry they never use.
      const { startSwitchyard } = await import("../app/switchyard.js");
      const app = await startSwitchyard({
        services: flags.services,
        host: flags.host,
        port: flags.port,
        dataDir: flags.dataDir,
        ...(flags.databaseUrl === undefined ? {} : { databaseUrl: flags.databaseUrl }),
        ...(flags.memory === true ? { memory: true } : {}),
        ...(flags.userService === undefined ? {} : { userServiceTarget: flags.userService }),
        ...(flags.userServiceHedgeAfter === undefined ? {} : { userServiceHedgingDelayMs: flags.userServiceHedgeAfter }),
        userServiceTunnel: flags.userServiceTunnel,
        drainTimeoutMs: flags.drainTimeout,
        maxConcurrentCalls: flags.maxConcurrentCalls,
        engine: flags.engine,
        ...(flags.clientEngine === undefined ? {} : { clientEngine: flags.clientEngine }),
        ...tls,
        ...telemetry,
        ...metrics,
        ...registry,
        ...access,
        logger,
      }).catch((error: unknown) => {
        logger.fatal({ err: error }, "could not start");
        process.exit(1);
      });
      // Signal handlers before the listening line: a supervisor may signal as
      // soon as it reads that line, and without a handler the signal kills.
      let stopping = false;
      const stop = (signal: NodeJS.Signals | "primary"): void => {
        if (stopping) {
          // The primary forwards a Ctrl-C the worker has already seen itself.
          if (signal === "primary") return;
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
      onStopRequest(() => stop("primary"));
      logger.info(
        {
          ...(workerId() === undefined ? {} : { pid: process.pid }),
          address: `${flags.host}:${app.port}`,
          services: flags.services,
          store: app.store,
          userService: flags.userService ?? (flags.services.includes("order") ? "in-process" : undefined),
          ...(flags.userServiceHedgeAfter === undefined ? {} : { userServiceHedgeAfterMs: flags.userServiceHedgeAfter }),
          tls: tls.tls === undefined ? "off" : tls.tls.clientCaFile === undefined ? "tls" : "mtls",
          ...(tls.userServiceTls === undefined ? {} : { userServiceTls: tls.userServiceTls.certFile === undefined ? "tls" : "mtls" }),
          metrics:
            app.metricsPort !== undefined
              ? `http://${flags.host}:${app.metricsPort}/metrics`
              : flags.metricsPort !== undefined
                ? "served by the primary"
                : "off",
          tracing: app.tracing ?? "off",
          registry: flags.registry ?? "off",
          profile: flags.profile,
          auth: app.auth,
          ...(app.registrations.length === 0 ? {} : { registered: app.registrations.map((r) => `${r.key} → ${r.address}`) }),
        },
        // In a cluster the primary says "switchyard listening" once every worker does.
        `${workerId() === undefined ? "switchyard" : "worker"} listening on ${flags.host}:${app.port}`,
      );
      reportReady(app.port);
    });
}

/** The primary of `serve --workers N`: starts the workers, then stops them on SIGTERM or SIGINT. */
async function superviseWorkers(flags: ServeFlags, logger: Logger): Promise<void> {
  const workers = runWorkerCluster({ workers: flags.workers, logger, stopTimeoutMs: flags.drainTimeout + 5_000 });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting without waiting for the workers");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "stopping the workers");
    void workers.stop().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  try {
    const port = await workers.ready;
    const metrics = flags.metricsPort === undefined ? undefined : await startClusterMetricsServer({ port: flags.metricsPort, host: flags.host });
    logger.info(
      {
        address: `${flags.host}:${port}`,
        workers: flags.workers,
        metrics: metrics === undefined ? "off" : `http://${flags.host}:${metrics.port}/metrics (all workers, label worker)`,
      },
      `switchyard listening on ${flags.host}:${port} with ${flags.workers} workers`,
    );
  } catch (error) {
    logger.fatal({ err: error }, "could not start the workers");
    await workers.stop();
    process.exit(1);
  }
}

import { readFileSync } from "node:fs";
import path from "node:path";
import { type BenchMethod, type MethodSpec, SEED_RESPONSES, V1_RESPONSES } from "./fixtures.js";

/** Which service a request is for: the split topology serves them on different ports. */
export type ServiceKind = MethodSpec["service"];
import { createCheckClient, type CheckClient } from "./grpc-check.js";
import { startOtlpSink } from "./otlp-sink.js";
import { freePort, type ServerProcess, startServerProcess } from "./server-process.js";

/** How a TypeScript entry point is run: compiled JS (as `npm start` does) or through tsx. */
export interface Runtime {
  /** argv after `node` for an entry point given relative to the repository, e.g. "src/cli/main.ts". */
  nodeArgs(entry: string): string[];
  /** Runs each server's node under a tool (ServerProcessOptions.launcher). Default none. */
  readonly launcher?: readonly string[];
  /** How long a server may take to listen. Default 30 s. */
  readonly readyTimeoutMs?: number;
}

/** Everything a configuration needs to start. */
export interface StartContext {
  readonly runtime: Runtime;
  readonly repo: string;
  /** CPU list the servers are pinned to. */
  readonly cpu: string;
  /** CPU list of the load generator: a multi-core configuration also runs its servers there. */
  readonly loadCpu: string;
  /** A fresh directory for this configuration's SQLite files. */
  readonly dataDir: string;
  /** postgres:// URL (search_path set to the benchmark's schema); required by the PostgreSQL configurations. */
  readonly databaseUrl?: string;
}

/** A running configuration under test. */
export interface RunningSystem {
  readonly processes: readonly ServerProcess[];
  /** The port of the process that hosts this service. */
  portFor(service: ServiceKind): number;
  /** A check client for the process that hosts this service. */
  clientFor(service: ServiceKind): CheckClient;
  stop(): Promise<void>;
}

/** A configuration the benchmark can measure. */
export interface SystemConfig {
  readonly name: string;
  /** Short label for tables and the chart. */
  readonly label: string;
  readonly description: string;
  readonly needsPostgres: boolean;
  /** What a correct answer to each method is, for this system's contract. */
  readonly expected: Readonly<Record<BenchMethod, Record<string, string>>>;
  /** Starts the processes and creates the benchmark's user and order. */
  start(context: StartContext): Promise<RunningSystem>;
}

const SERVE = "src/cli/main.ts";

function serveArgs(port: number, extra: readonly string[]): string[] {
  return ["serve", "--port", String(port), "--host", "127.0.0.1", "--log-level", "warn", ...extra];
}

async function start(context: StartContext, role: string, entry: string, args: (port: number) => string[], v8Flags: readonly string[] = COMMAND_NODE_FLAGS): Promise<ServerProcess> {
  const port = await freePort();
  const { runtime } = context;
  return startServerProcess({
    role,
    port,
    cpu: context.cpu,
    cwd: context.repo,
    nodeArgs: [...v8Flags, ...runtime.nodeArgs(entry), ...args(port)],
    launcher: runtime.launcher,
    readyTimeoutMs: runtime.readyTimeoutMs,
  });
}

/**
 * The node flags the `switchyard` command runs with: those of its shebang
 * (src/cli/main.ts), semi-spaces of at most 8 MiB and an old generation that
 * grows by 10 % between full collections, which keep peak RSS within the
 * target (docs/benchmarks.md, "Peak RSS and the V8 heap"). Read from the file
 * so that the benchmark measures what users run.
 */
export const COMMAND_NODE_FLAGS: readonly string[] = commandNodeFlags();

function commandNodeFlags(): string[] {
  const shebang = readFileSync(new URL("../src/cli/main.ts", import.meta.url), "utf8").split("\n", 1)[0] ?? "";
  const match = /^#!\/usr\/bin\/env -S node((?: --[\w-]+=\S+)*)$/.exec(shebang);
  if (match === null) throw new Error(`src/cli/main.ts: unexpected shebang "${shebang}"`);
  return (match[1] ?? "").trim().split(" ").filter(Boolean);
}

/** No flags at all: V8's own heap sizing, tuned for throughput (the opt-out, `npm run start:large-heap`). */
const V8_DEFAULTS: readonly string[] = [];

function running(processes: ServerProcess[], portOf: (service: ServiceKind) => number): RunningSystem {
  const clients = new Map<number, CheckClient>();
  const clientFor = (service: ServiceKind): CheckClient => {
    const port = portOf(service);
    let client = clients.get(port);
    if (client === undefined) clients.set(port, (client = createCheckClient(port)));
    return client;
  };
  return {
    processes,
    portFor: portOf,
    clientFor,
    async stop() {
      for (const client of clients.values()) client.close();
      // Reverse order: the order process goes before the user process it calls.
      for (const process of [...processes].reverse()) await process.stop();
    },
  };
}

/** Switchyard's gRPC server engines (`serve --engine`). */
type Engine = "grpc-js" | "http2";

// The default engine (http2) goes unnamed; the grpc-js engine's configurations say so.
const engineSuffix = (engine: Engine): string => (engine === "http2" ? "" : `-${engine}`);
const engineLabel = (engine: Engine): string => (engine === "http2" ? "" : ` (${engine} engine)`);
const engineArgs = (engine: Engine): string[] => (engine === "http2" ? [] : ["--engine", engine]);

type Store = "sqlite" | "postgres" | "memory";
const STORE_LABEL: Readonly<Record<Store, string>> = { sqlite: "SQLite", postgres: "PostgreSQL", memory: "in-memory" };
const STORE_DESCRIPTION: Readonly<Record<Store, string>> = {
  sqlite: "SQLite (WAL) files",
  postgres: "PostgreSQL",
  memory: "data in memory (--memory)",
};

/** Switchyard with both services in one process, on SQLite, PostgreSQL or in memory. */
function switchyardSingle(store: Store, engine: Engine = "http2", v8Flags: readonly string[] = COMMAND_NODE_FLAGS): SystemConfig {
  const large = v8Flags === V8_DEFAULTS;
  return {
    name: `switchyard-${store}${engineSuffix(engine)}${large ? "-large-heap" : ""}`,
    label: `switchyard ${STORE_LABEL[store]}${engineLabel(engine)}${large ? ", large heap" : ""}`,
    description: `node ${v8Flags.length === 0 ? "(V8's heap defaults) " : `${v8Flags.join(" ")} `}switchyard serve --engine ${engine}: both services in one process, ${STORE_DESCRIPTION[store]}; OrderService reaches UserService through the in-process transport.`,
    needsPostgres: store === "postgres",
    expected: V1_RESPONSES,
    async start(context) {
      const storeArgs = [
        ...engineArgs(engine),
        "--data-dir",
        context.dataDir,
        ...(store === "postgres" ? ["--database-url", requireUrl(context)] : store === "memory" ? ["--memory"] : []),
      ];
      const server = await start(context, "server", SERVE, (port) => serveArgs(port, storeArgs), v8Flags);
      const system = running([server], () => server.port);
      await seedV1(system);
      return system;
    },
  };
}

/** The trace sampling ratio of the telemetry configurations: issue 6's target is set at 1 %. */
export const TELEMETRY_SAMPLE_RATIO = 0.01;

/** The suffix of a configuration that is another one with tracing and metrics on. */
export const TELEMETRY_SUFFIX = "-telemetry";

/**
 * switchyardSingle with tracing and metrics on, to measure what they cost
 * (issue 6: at most 10 % of throughput at 1 % sampling): `--metrics-port`,
 * `--otlp-endpoint` pointing at a sink in the bench process (on the load
 * core) that discards the exports, `--trace-sample-ratio 0.01`. Nothing
 * scrapes the metrics during a run (Prometheus would, every 15 s or so).
 */
function switchyardTelemetry(store: Store, engine: Engine = "http2"): SystemConfig {
  const plain = switchyardSingle(store, engine);
  return {
    ...plain,
    name: `${plain.name}${TELEMETRY_SUFFIX}`,
    label: `${plain.label} + telemetry`,
    description: `${plain.description} Tracing (OTLP/HTTP to a sink that discards it, sampling ${TELEMETRY_SAMPLE_RATIO * 100} %) and Prometheus metrics on.`,
    async start(context) {
      const sink = await startOtlpSink();
      try {
        const metricsPort = await freePort();
        const args = [
          ...engineArgs(engine),
          "--data-dir",
          context.dataDir,
          ...(store === "postgres" ? ["--database-url", requireUrl(context)] : store === "memory" ? ["--memory"] : []),
          "--metrics-port",
          String(metricsPort),
          "--otlp-endpoint",
          sink.endpoint,
          "--trace-sample-ratio",
          String(TELEMETRY_SAMPLE_RATIO),
        ];
        const server = await start(context, "server", SERVE, (port) => serveArgs(port, args));
        const system = running([server], () => server.port);
        try {
          await seedV1(system);
          // Measure telemetry only if it is really on: the seeding calls must show in the metrics.
          const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
          if (!metrics.includes('grpc_server_handled_total{grpc_type="unary",grpc_service="service.UserService",grpc_method="CreateUser"')) {
            throw new Error(`${plain.name}${TELEMETRY_SUFFIX}: /metrics does not count the seeding calls`);
          }
        } catch (error) {
          await system.stop();
          throw error;
        }
        return {
          ...system,
          async stop() {
            // The server exports its last spans as it shuts down, so the sink has them after this.
            await system.stop();
            await sink.close();
            if (sink.received.requests === 0) {
              process.stderr.write(`warning: ${plain.name}${TELEMETRY_SUFFIX} exported no spans: was tracing on?\n`);
            }
          },
        };
      } catch (error) {
        await sink.close();
        throw error;
      }
    },
  };
}

/**
 * Switchyard with one process per service: OrderService calls UserService
 * over a gRPC channel: by default the engine's, with the lean client's call
 * tunnel. `client` measures another alone: the grpc-js channel, or the lean
 * client with a stream per call (`--no-user-service-tunnel`).
 */
function switchyardSplit(store: "sqlite" | "postgres", engine: Engine = "http2", client?: "grpc-js" | "streams"): SystemConfig {
  const clientArgs = client === "grpc-js" ? ["--client-engine", "grpc-js"] : client === "streams" ? ["--no-user-service-tunnel"] : [];
  const clientSuffix = client === undefined ? "" : `-${client}-client`;
  const clientLabel = client === undefined ? "" : client === "grpc-js" ? " (grpc-js client)" : " (a stream per call)";
  return {
    name: `switchyard-split-${store}${engineSuffix(engine)}${clientSuffix}`,
    label: `switchyard split ${store === "sqlite" ? "SQLite" : "PostgreSQL"}${engineLabel(engine)}${clientLabel}`,
    description: `switchyard serve --engine ${engine}${clientArgs.map((arg) => ` ${arg}`).join("")}, --services user and --services order --user-service …: two processes, both pinned to the server core, ${store === "sqlite" ? "SQLite" : "PostgreSQL"}.`,
    needsPostgres: store === "postgres",
    expected: V1_RESPONSES,
    async start(context) {
      const storeArgs = (dir: string): string[] => [
        ...engineArgs(engine),
        "--data-dir",
        dir,
        ...(store === "sqlite" ? [] : ["--database-url", requireUrl(context)]),
      ];
      const user = await start(context, "user", SERVE, (port) =>
        serveArgs(port, ["--services", "user", ...storeArgs(path.join(context.dataDir, "user"))]),
      );
      try {
        const order = await start(context, "order", SERVE, (port) =>
          serveArgs(port, [
            "--services",
            "order",
            "--user-service",
            `127.0.0.1:${user.port}`,
            ...clientArgs,
            ...storeArgs(path.join(context.dataDir, "order")),
          ]),
        );
        const system = running([user, order], (service) => (service === "user" ? user.port : order.port));
        await seedV1(system);
        return system;
      } catch (error) {
        await user.stop();
        throw error;
      }
    },
  };
}

/** The suffix of a configuration that runs `serve --workers N` over both cores. */
export const WORKERS_SUFFIX = "-workers2";

/**
 * `serve --workers 2` on SQLite: two worker processes behind one port, pinned
 * to the server and the load CPUs (h2load shares the second core with a
 * worker: req/CPU-s accounts for that). Every worker is measured as a process
 * of its own; the primary only hands out connections.
 */
function switchyardWorkers(): SystemConfig {
  const plain = switchyardSingle("sqlite");
  return {
    ...plain,
    name: `${plain.name}${WORKERS_SUFFIX}`,
    label: `${plain.label}, 2 workers on 2 cores`,
    description: `${plain.description} Run with --workers 2 (node:cluster), the servers pinned to both CPUs.`,
    async start(context) {
      const primary = await start({ ...context, cpu: `${context.cpu},${context.loadCpu}` }, "primary", SERVE, (port) =>
        serveArgs(port, ["--workers", "2", "--data-dir", context.dataDir]),
      );
      const workers = await workersOf(primary, 2);
      const system = running([primary, ...workers], () => primary.port);
      await seedV1(system);
      return system;
    },
  };
}

/** The worker processes of a cluster primary, once it has `count` and they have had time to listen. */
async function workersOf(primary: ServerProcess, count: number): Promise<ServerProcess[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pids = childPids(primary.pid);
    if (pids.length >= count) {
      // Workers listen a moment after they appear; the first connections must not all go to one.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      // The primary stops its workers itself.
      return pids.slice(0, count).map((pid, i) => ({ role: `worker ${i + 1}`, pid, port: primary.port, stop: async () => undefined }));
    }
    if (Date.now() > deadline) throw new Error(`the cluster primary ${primary.pid} has ${pids.length} workers, expected ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The bare node:http2 ceiling. */
const bareHttp2: SystemConfig = {
  name: "bare-http2",
  label: "bare node:http2",
  description: "bench/baselines/bare-http2.ts: node:http2 answering every POST with a fixed gRPC response (the ceiling of one Node process).",
  needsPostgres: false,
  expected: V1_RESPONSES,
  async start(context) {
    const server = await start(context, "server", "bench/baselines/bare-http2.ts", (port) => ["--port", String(port)], V8_DEFAULTS);
    return running([server], () => server.port);
  },
};

/** The naive grpc-js + proto-loader port of the seed. */
const naiveGrpcJs: SystemConfig = {
  name: "naive-grpc-js",
  label: "naive grpc-js",
  description:
    "bench/baselines/naive-grpc-js.ts: @grpc/grpc-js + @grpc/proto-loader loading contracts/seed/service.proto at run time, in-memory maps, OrderService calling UserService over a loopback grpc-js channel.",
  needsPostgres: false,
  expected: SEED_RESPONSES,
  async start(context) {
    const proto = path.join(context.repo, "contracts/seed/service.proto");
    const server = await start(context, "server", "bench/baselines/naive-grpc-js.ts", (port) => ["--port", String(port), "--proto", proto], V8_DEFAULTS);
    const system = running([server], () => server.port);
    await system.clientFor("order").createOrder();
    return system;
  },
};

/** Every configuration, in report order; the first two are the baselines. */
export const SYSTEM_CONFIGS: readonly SystemConfig[] = [
  bareHttp2,
  naiveGrpcJs,
  switchyardSingle("memory"),
  switchyardSingle("sqlite"),
  switchyardSingle("postgres"),
  switchyardSplit("sqlite"),
  switchyardWorkers(),
  switchyardSplit("postgres"),
  switchyardSingle("memory", "grpc-js"),
  switchyardSingle("sqlite", "grpc-js"),
  switchyardSplit("sqlite", "grpc-js"),
  switchyardSplit("sqlite", "http2", "grpc-js"),
  switchyardSplit("sqlite", "http2", "streams"),
  switchyardTelemetry("memory"),
  switchyardTelemetry("sqlite"),
  switchyardSingle("memory", "http2", V8_DEFAULTS),
];

/**
 * Measured unless --configs says otherwise. Split PostgreSQL, the grpc-js
 * engine and telemetry are opt-in, to keep a full run near ten minutes.
 */
export const DEFAULT_CONFIGS: readonly string[] = [
  "bare-http2",
  "naive-grpc-js",
  "switchyard-memory",
  "switchyard-sqlite",
  "switchyard-postgres",
  "switchyard-split-sqlite",
  `switchyard-sqlite${WORKERS_SUFFIX}`,
];

async function seedV1(system: RunningSystem): Promise<void> {
  await system.clientFor("user").createUser();
  await system.clientFor("order").createOrder();
}

function requireUrl(context: StartContext): string {
  if (context.databaseUrl === undefined) throw new Error("this configuration needs PostgreSQL");
  return context.databaseUrl;
}

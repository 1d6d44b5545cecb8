import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startSwitchyard, type Switchyard, type SwitchyardOptions } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { type Client, type ClientOptions, createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import type { Transport } from "../../src/toolkit/client/transport.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { createTestSchema, type TestSchema } from "./postgres.js";

/** `single`: one process hosts both services. `split`: one process per service, OrderService calls UserService over gRPC. */
export type Topology = "single" | "split";
/** Where the system keeps its data. */
export type StoreKind = "sqlite" | "postgres";

/** One way of running the system. */
export interface SystemConfig {
  readonly topology: Topology;
  readonly store: StoreKind;
}

/** The four configurations every behaviour must hold in. */
export const CONFIGURATIONS: readonly SystemConfig[] = [
  { topology: "single", store: "sqlite" },
  { topology: "single", store: "postgres" },
  { topology: "split", store: "sqlite" },
  { topology: "split", store: "postgres" },
];

/** A readable name for a configuration, for describe blocks. */
export function configName(config: SystemConfig & { readonly engine?: Engine }): string {
  const engine = config.engine === undefined ? "" : `, ${config.engine} engine`;
  return `${config.topology} topology on ${config.store}${engine}`;
}

/** Which service's server an interceptor goes on. In the single topology both name the one server. */
export type ServerRole = "user" | "order";

/** Options for startSystem. */
export interface StartSystemOptions extends SystemConfig {
  /** Options of the typed clients the test uses. */
  readonly clientOptions?: ClientOptions;
  /** How long close() lets in-flight calls finish. Default 1 s: tests should not wait for 10. */
  readonly drainTimeoutMs?: number;
  /** The servers' gRPC engine. Default: startSwitchyard's (http2). */
  readonly engine?: Engine;
}

/** A gRPC server implementation startSwitchyard offers. */
export type Engine = NonNullable<SwitchyardOptions["engine"]>;

/** Every server engine: wire-level behaviour (errors, deadlines, bad bytes) is checked on each. */
export const ENGINES: readonly Engine[] = ["grpc-js", "http2"];

/** A running system and typed clients to it. */
export interface System {
  readonly config: SystemConfig;
  /** UserService client (to the user server's port). */
  readonly user: Client<typeof UserServiceDefinition>;
  /** OrderService client (to the order server's port). */
  readonly order: Client<typeof OrderServiceDefinition>;
  /** Port of the server hosting UserService. */
  readonly userPort: number;
  /** Port of the server hosting OrderService (equal to userPort in the single topology). */
  readonly orderPort: number;
  /** `127.0.0.1:<port>` of the server hosting UserService. */
  readonly userAddress: string;
  /** `127.0.0.1:<port>` of the server hosting OrderService. */
  readonly orderAddress: string;
  /**
   * Adds a server interceptor, innermost of the extras, on the server hosting
   * `role`'s service, for calls from now on. Returns a function that removes it.
   * It sees every call that server serves: filter on `call.service`/`call.method`.
   */
  addInterceptor(role: ServerRole, interceptor: ServerInterceptor): () => void;
  /** Closes the clients, the servers and removes the data (directory or schema). Safe to call twice. */
  close(): Promise<void>;
}

const HOST = "127.0.0.1";

/**
 * An interceptor hook that a server is started with: it runs whatever
 * interceptors the test has added at the moment of each call.
 */
function createHook(): { readonly interceptor: ServerInterceptor; add(interceptor: ServerInterceptor): () => void } {
  const added: ServerInterceptor[] = [];
  return {
    interceptor(call, next) {
      const run = (index: number): Promise<unknown> => {
        const current = added[index];
        return current === undefined ? next() : current(call, () => run(index + 1));
      };
      return run(0);
    },
    add(interceptor) {
      added.push(interceptor);
      return () => {
        const at = added.indexOf(interceptor);
        if (at >= 0) added.splice(at, 1);
      };
    },
  };
}

function engineFromEnvironment(): Engine | undefined {
  const value = process.env.SWITCHYARD_TEST_ENGINE;
  if (value === undefined || value === "") return undefined;
  const engine = ENGINES.find((candidate) => candidate === value);
  if (engine === undefined) throw new Error(`SWITCHYARD_TEST_ENGINE must be one of ${ENGINES.join(", ")}, not ${value}`);
  return engine;
}

/** Starts the system in the given configuration. Every resource it makes is released by close(). */
export async function startSystem(options: StartSystemOptions): Promise<System> {
  const config: SystemConfig = { topology: options.topology, store: options.store };
  // SWITCHYARD_TEST_ENGINE=http2 runs suites that do not choose an engine on that one.
  const engineOverride = options.engine ?? engineFromEnvironment();
  const logger = silentLogger();
  const drainTimeoutMs = options.drainTimeoutMs ?? 1_000;
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanUp = async (): Promise<void> => {
    const errors: unknown[] = [];
    // Last made, first released: clients, then the order server, then the user server, then data.
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "closing the test system failed");
  };

  try {
    const dataRoot = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-e2e-"));
    cleanups.push(() => fs.rm(dataRoot, { recursive: true, force: true }));
    let databaseUrl: string | undefined;
    if (config.store === "postgres") {
      const schema: TestSchema = await createTestSchema();
      cleanups.push(() => schema.drop());
      databaseUrl = schema.url;
    }
    const dataDir = async (name: string): Promise<string> => {
      const dir = path.join(dataRoot, name);
      await fs.mkdir(dir);
      return dir;
    };
    const start = async (
      services: readonly ("user" | "order")[],
      hook: ServerInterceptor,
      userServiceTarget?: string,
    ): Promise<Switchyard> => {
      const server = await startSwitchyard({
        services,
        host: HOST,
        port: 0,
        dataDir: await dataDir(services.join("-")),
        ...(databaseUrl === undefined ? {} : { databaseUrl }),
        ...(userServiceTarget === undefined ? {} : { userServiceTarget }),
        drainTimeoutMs,
        ...(engineOverride === undefined ? {} : { engine: engineOverride }),
        interceptors: [hook],
        logger,
      });
      cleanups.push(() => server.close());
      return server;
    };

    const userHook = createHook();
    let orderHook = userHook;
    let userPort: number;
    let orderPort: number;
    if (config.topology === "single") {
      userPort = orderPort = (await start(["user", "order"], userHook.interceptor)).port;
    } else {
      userPort = (await start(["user"], userHook.interceptor)).port;
      orderHook = createHook();
      orderPort = (await start(["order"], orderHook.interceptor, `${HOST}:${userPort}`)).port;
    }

    const userAddress = `${HOST}:${userPort}`;
    const orderAddress = `${HOST}:${orderPort}`;
    const services = [UserServiceDefinition, OrderServiceDefinition];
    // One transport per address: in the single topology both clients share one channel.
    const userTransport: Transport = createGrpcTransport({ target: userAddress, services });
    cleanups.push(() => userTransport.close());
    let orderTransport = userTransport;
    if (orderAddress !== userAddress) {
      orderTransport = createGrpcTransport({ target: orderAddress, services });
      cleanups.push(() => orderTransport.close());
    }

    return {
      config,
      user: createClient(UserServiceDefinition, userTransport, options.clientOptions),
      order: createClient(OrderServiceDefinition, orderTransport, options.clientOptions),
      userPort,
      orderPort,
      userAddress,
      orderAddress,
      addInterceptor: (role, interceptor) => (role === "user" ? userHook : orderHook).add(interceptor),
      close: cleanUp,
    };
  } catch (error) {
    await cleanUp().catch(() => undefined);
    throw error;
  }
}

/** What a test expects a failed call to carry. */
export interface ExpectedError {
  readonly code: Code;
  readonly reason?: string;
  /** The fields of the BadRequest violations, in any order. */
  readonly fields?: readonly string[];
}

/** Awaits a call that must fail, checks its status and details, and returns the error. */
export async function expectCallError(call: Promise<unknown>, expected: ExpectedError): Promise<ClientError> {
  let caught: unknown;
  try {
    const response = await call;
    caught = new Error(`expected ${Code[expected.code]}, but the call succeeded with ${JSON.stringify(response)}`);
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof ClientError)) throw caught;
  assert.equal(
    Code[caught.code],
    Code[expected.code],
    `expected ${Code[expected.code]}, got ${Code[caught.code]}: ${caught.message}`,
  );
  if (expected.reason !== undefined) assert.equal(caught.reason, expected.reason, caught.message);
  if (expected.fields !== undefined) {
    assert.deepEqual(caught.fieldViolations.map((v) => v.field).sort(), [...expected.fields].sort(), caught.message);
    for (const violation of caught.fieldViolations) assert.notEqual(violation.description, "");
  }
  return caught;
}

/** Resolves with `promise`, or rejects when it has not settled within `ms` (a bound, not a sleep). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

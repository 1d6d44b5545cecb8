import os from "node:os";
import type { TestContext } from "node:test";
import { startSwitchyard } from "../../src/app/switchyard.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";

/** What a replica's GetUser does before its handler runs. */
export type GetUserFault = "none" | "unavailable" | "unavailable-on-first-attempt";

/** A UserService replica in this process (in-memory store, port 0) whose GetUser a test can break. */
export interface UserReplica {
  readonly address: string;
  /** GetUser attempts that reached it. */
  readonly calls: number;
  /** The `traceparent` of each GetUser attempt, in order (undefined when absent). */
  readonly traceparents: ReadonlyArray<string | undefined>;
  fault: GetUserFault;
  /** Closes it now (its spans flushed); the test's end closes it otherwise. */
  close(): Promise<void>;
}

/** Starts a UserService replica, closed when the test ends. `otlpEndpoint` traces its calls there. */
export async function startUserReplica(t: TestContext, options: { otlpEndpoint?: string } = {}): Promise<UserReplica> {
  const traceparents: Array<string | undefined> = [];
  let closing: Promise<void> | undefined;
  const replica = { address: "", calls: 0, traceparents, fault: "none" as GetUserFault, close: () => closing ?? Promise.resolve() };
  const fault: ServerInterceptor = async (call, next) => {
    if (call.method !== "GetUser") return next();
    replica.calls++;
    const metadata = call.context.metadata;
    const traceparent = metadata["traceparent"];
    traceparents.push(typeof traceparent === "string" ? traceparent : undefined);
    const firstAttempt = metadata["grpc-previous-rpc-attempts"] === undefined;
    if (replica.fault === "unavailable" || (replica.fault === "unavailable-on-first-attempt" && firstAttempt)) {
      throw new RpcError(Code.UNAVAILABLE, "this replica is failing (test fault)");
    }
    return next();
  };
  const app = await startSwitchyard({
    services: ["user"],
    host: "127.0.0.1",
    port: 0,
    memory: true,
    dataDir: os.tmpdir(),
    drainTimeoutMs: 200,
    interceptors: [fault],
    logger: silentLogger(),
    ...(options.otlpEndpoint === undefined ? {} : { otlpEndpoint: options.otlpEndpoint }),
  });
  replica.close = () => (closing ??= app.close());
  t.after(() => replica.close());
  replica.address = `127.0.0.1:${app.port}`;
  return replica;
}

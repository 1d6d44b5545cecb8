import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { startSwitchyard, type Switchyard } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { type Client, createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import type { Transport } from "../../src/toolkit/client/transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { createTestSchema, type TestSchema } from "../support/postgres.js";

const HOST = "127.0.0.1";

// ---------------------------------------------------------------------------
// A strict parser of the Prometheus text exposition format (version 0.0.4):
// it rejects what Prometheus would refuse to scrape and more (families split
// up, duplicate series, histograms whose buckets do not add up).

type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  type: MetricType | undefined;
  help: string | undefined;
  readonly samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** What Go's strconv.ParseFloat accepts, as the format requires (NaN and Inf in any case: prom-client writes "Nan"). */
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity)|nan)$/i;
const TYPES: readonly string[] = ["counter", "gauge", "histogram", "summary", "untyped"];

function parseFloatStrict(text: string, where: string): number {
  assert.match(text, FLOAT, `${where}: "${text}" is not a float`);
  if (/inf/i.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
  if (/nan/i.test(text)) return NaN;
  return Number(text);
}

/** Parses `{a="x",b="y"}` starting at `start` (the `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, start: number, where: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    if (line[i] === "}") return { labels, end: i + 1 };
    const nameMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    assert.ok(nameMatch, `${where}: expected a label name at column ${i}`);
    const name = nameMatch[0];
    assert.ok(!name.startsWith("__"), `${where}: label names starting with __ are reserved`);
    assert.ok(!(name in labels), `${where}: label ${name} given twice`);
    i += name.length;
    assert.equal(line.slice(i, i + 2), '="', `${where}: expected =" after label ${name}`);
    i += 2;
    let value = "";
    for (;;) {
      const c = line[i];
      assert.ok(c !== undefined, `${where}: unterminated label value`);
      if (c === '"') break;
      if (c === "\\") {
        const escaped = line[i + 1];
        assert.ok(escaped === "\\" || escaped === '"' || escaped === "n", `${where}: bad escape \\${escaped ?? ""}`);
        value += escaped === "n" ? "\n" : escaped;
        i += 2;
      } else {
        value += c;
        i += 1;
      }
    }
    labels[name] = value;
    i += 1;
    if (line[i] === ",") i += 1;
    else assert.equal(line[i], "}", `${where}: expected , or } after a label`);
  }
}

/** The family a sample name belongs to, given the family's type. */
function belongsTo(family: Family, sampleName: string): boolean {
  if (sampleName === family.name) return family.type !== "histogram";
  const suffixes = family.type === "histogram" ? ["_bucket", "_sum", "_count"] : family.type === "summary" ? ["_sum", "_count"] : [];
  return suffixes.some((suffix) => sampleName === family.name + suffix);
}

function seriesKey(name: string, labels: Readonly<Record<string, string>>, without?: string): string {
  const pairs = Object.entries(labels)
    .filter(([key]) => key !== without)
    .sort(([a], [b]) => a.localeCompare(b));
  return `${name}${JSON.stringify(pairs)}`;
}

function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: { le: number; count: number }[]; sum?: number; count?: number }>();
  for (const sample of family.samples) {
    const key = seriesKey(family.name, sample.labels, "le");
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (sample.name.endsWith("_bucket")) {
      const le = sample.labels["le"];
      assert.ok(le !== undefined, `${sample.name}: a bucket without le`);
      group.buckets.push({ le: parseFloatStrict(le, `${sample.name} le`), count: sample.value });
    } else if (sample.name.endsWith("_sum")) group.sum = sample.value;
    else group.count = sample.value;
  }
  for (const [key, group] of groups) {
    assert.ok(group.sum !== undefined && group.count !== undefined, `${key}: histogram without _sum or _count`);
    for (let i = 1; i < group.buckets.length; i++) {
      const [previous, bucket] = [group.buckets[i - 1], group.buckets[i]] as [{ le: number; count: number }, { le: number; count: number }];
      assert.ok(bucket.le > previous.le, `${key}: buckets not in increasing le order`);
      assert.ok(bucket.count >= previous.count, `${key}: bucket counts are not cumulative`);
    }
    const last = group.buckets.at(-1);
    assert.ok(last !== undefined && last.le === Infinity, `${key}: no +Inf bucket`);
    assert.equal(last.count, group.count, `${key}: the +Inf bucket differs from _count`);
  }
}

/** Parses an exposition, failing the test on anything malformed. */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith("\n"), "the exposition must end with a newline");
  const families = new Map<string, Family>();
  const series = new Set<string>();
  let current: Family | undefined;
  const family = (name: string): Family => {
    let found = families.get(name);
    if (found === undefined) {
      found = { name, type: undefined, help: undefined, samples: [] };
      families.set(name, found);
    }
    return found;
  };
  text
    .slice(0, -1)
    .split("\n")
    .forEach((line, index) => {
      const where = `line ${index + 1}`;
      if (line.trim() === "") return;
      if (line.startsWith("#")) {
        const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
        if (meta === null) return; // a plain comment
        const [, keyword, name, rest = ""] = meta as unknown as [string, "HELP" | "TYPE", string, string | undefined];
        assert.match(name, METRIC_NAME, `${where}: bad metric name`);
        const target = family(name);
        if (keyword === "HELP") {
          assert.equal(target.help, undefined, `${where}: second HELP for ${name}`);
          assert.doesNotMatch(rest.replace(/\\[\\n]/g, ""), /\\/, `${where}: bad escape in HELP`);
          target.help = rest;
        } else {
          assert.equal(target.type, undefined, `${where}: second TYPE for ${name}`);
          assert.equal(target.samples.length, 0, `${where}: TYPE after samples of ${name}`);
          assert.ok(TYPES.includes(rest), `${where}: unknown type "${rest}"`);
          target.type = rest as MetricType;
        }
        if (current !== target) assert.ok(target.samples.length === 0, `${where}: ${name} is split in two`);
        current = target;
        return;
      }
      const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
      assert.ok(nameMatch, `${where}: expected a metric name`);
      const name = nameMatch[0];
      let labels: Record<string, string> = {};
      let end = name.length;
      if (line[end] === "{") ({ labels, end } = parseLabels(line, end, where));
      const fields = line.slice(end).trim().split(/\s+/);
      assert.ok(line[end] === " " || line[end] === "\t", `${where}: expected a space before the value`);
      assert.ok(fields.length === 1 || fields.length === 2, `${where}: expected a value and an optional timestamp`);
      const value = parseFloatStrict(fields[0] ?? "", where);
      if (fields[1] !== undefined) assert.match(fields[1], /^-?\d+$/, `${where}: bad timestamp`);
      const owner = current !== undefined && belongsTo(current, name) ? current : family(name);
      if (owner !== current) assert.equal(owner.samples.length, 0, `${where}: ${name} is split in two`);
      current = owner;
      if (owner.type === "counter") assert.ok(value >= 0, `${where}: a negative counter`);
      const key = seriesKey(name, labels);
      assert.ok(!series.has(key), `${where}: duplicate series ${key}`);
      series.add(key);
      owner.samples.push({ name, labels, value });
    });
  for (const f of families.values()) {
    for (const name of Object.keys(f.samples[0]?.labels ?? {})) assert.match(name, LABEL_NAME);
    if (f.type === "histogram") checkHistogram(f);
  }
  return families;
}

// ---------------------------------------------------------------------------

/** `promtool check metrics` when installed (Debian package `prometheus`). */
const promtool = spawnSync("promtool", ["--version"], { encoding: "utf8" }).status === 0;

/**
 * Lint findings promtool reports about prom-client's own default metrics:
 * gauges whose names end in `_total`. Not ours to rename; anything else fails.
 */
const KNOWN_DEFAULT_METRIC_LINT = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
].map((name) => `${name} non-counter metrics should not have "_total" suffix`);

async function scrape(port: number): Promise<{ text: string; families: Map<string, Family> }> {
  const response = await fetch(`http://${HOST}:${port}/metrics`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await response.text();
  return { text, families: parseExposition(text) };
}

/** The value of the series `name{labels}`; 0 when it has not appeared yet. */
function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string>): number {
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name === name && seriesKey(name, sample.labels) === seriesKey(name, labels)) return sample.value;
    }
  }
  return 0;
}

function rpc(service: "UserService" | "OrderService", method: string, code?: string): Record<string, string> {
  return {
    grpc_type: "unary",
    grpc_service: `service.${service}`,
    grpc_method: method,
    ...(code === undefined ? {} : { grpc_code: code }),
  };
}

function storeOp(service: "user" | "order", store: "sqlite" | "postgres", operation: string, outcome: "ok" | "error"): Record<string, string> {
  return { service, store, operation, outcome };
}

/** Runs `promtool check metrics` on an exposition: no parse error, and no lint finding but prom-client's known ones. */
function assertPromtoolClean(text: string): void {
  assert.ok(promtool, "promtool is not installed: apt-get install --no-install-recommends prometheus (.ci/run does)");
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  // 0: clean; 3: lint findings only (1 would be a parse error).
  assert.ok(result.status === 0 || result.status === 3, `promtool exited ${result.status}: ${result.stderr}${result.stdout}`);
  const findings = `${result.stdout}${result.stderr}`
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  assert.deepEqual(
    findings.filter((line) => !KNOWN_DEFAULT_METRIC_LINT.includes(line)),
    [],
    "promtool found problems in our metrics",
  );
}

/** Holds UserService.GetUser for one user id until released. */
function holdGetUser(userId: string): { interceptor: ServerInterceptor; entered: Promise<void>; release(): void } {
  let release: () => void = () => undefined;
  let enter: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const entered = new Promise<void>((resolve) => (enter = resolve));
  return {
    entered,
    release: () => release(),
    interceptor: async (call, next) => {
      const request = call.request as { userId?: unknown };
      if (call.method === "GetUser" && request.userId === userId) {
        enter();
        await released;
      }
      return next();
    },
  };
}

describe("Prometheus metrics of the split topology", () => {
  const apps: Switchyard[] = [];
  const transports: Transport[] = [];
  const dirs: string[] = [];
  let userApp: Switchyard;
  let orderApp: Switchyard;
  let userMetrics: number;
  let orderMetrics: number;
  let user: Client<typeof UserServiceDefinition>;
  let order: Client<typeof OrderServiceDefinition>;
  const heldUserId = `held-${randomUUID()}`;
  const hold = holdGetUser(heldUserId);

  before(async () => {
    const start = async (options: Parameters<typeof startSwitchyard>[0]): Promise<Switchyard> => {
      const app = await startSwitchyard(options);
      apps.push(app);
      return app;
    };
    const dataDir = async (): Promise<string> => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-metrics-"));
      dirs.push(dir);
      return dir;
    };
    const common = { host: HOST, port: 0, metricsPort: 0, drainTimeoutMs: 1_000, logger: silentLogger() };
    userApp = await start({ ...common, services: ["user"], dataDir: await dataDir(), interceptors: [hold.interceptor] });
    orderApp = await start({
      ...common,
      services: ["order"],
      dataDir: await dataDir(),
      userServiceTarget: `${HOST}:${userApp.port}`,
    });
    assert.ok(userApp.metricsPort !== undefined && orderApp.metricsPort !== undefined);
    userMetrics = userApp.metricsPort;
    orderMetrics = orderApp.metricsPort;
    const transport = (port: number, definition: typeof UserServiceDefinition | typeof OrderServiceDefinition): Transport => {
      const created = createGrpcTransport({ target: `${HOST}:${port}`, services: [definition] });
      transports.push(created);
      return created;
    };
    user = createClient(UserServiceDefinition, transport(userApp.port, UserServiceDefinition));
    order = createClient(OrderServiceDefinition, transport(orderApp.port, OrderServiceDefinition));
  });

  after(async () => {
    hold.release();
    for (const t of transports) t.close();
    for (const app of apps.reverse()) await app.close();
    await Promise.all(dirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
  });

  it("counts started and handled calls by method and code, on both sides", async () => {
    const [userBefore, orderBefore] = [(await scrape(userMetrics)).families, (await scrape(orderMetrics)).families];
    const userId = `user-${randomUUID()}`;
    await user.createUser({ userId, name: "Ada", email: "ada@example.com" });
    await order.createOrder({ orderId: `order-${randomUUID()}`, userId });
    await order.createOrder({ orderId: `order-${randomUUID()}`, userId });
    // Unknown user: UserService answers NOT_FOUND, OrderService NOT_FOUND too.
    await assert.rejects(order.getOrderByUser({ userId: `nobody-${randomUUID()}` }), (error: unknown) => {
      return error instanceof ClientError && error.code === Code.NOT_FOUND;
    });
    const [userAfter, orderAfter] = [(await scrape(userMetrics)).families, (await scrape(orderMetrics)).families];
    const delta = (before: Map<string, Family>, after: Map<string, Family>, name: string, labels: Record<string, string>): number =>
      valueOf(after, name, labels) - valueOf(before, name, labels);

    assert.deepEqual(
      {
        createOrderStarted: delta(orderBefore, orderAfter, "grpc_server_started_total", rpc("OrderService", "CreateOrder")),
        createOrderOk: delta(orderBefore, orderAfter, "grpc_server_handled_total", rpc("OrderService", "CreateOrder", "OK")),
        createOrderReceived: delta(orderBefore, orderAfter, "grpc_server_msg_received_total", rpc("OrderService", "CreateOrder")),
        createOrderSent: delta(orderBefore, orderAfter, "grpc_server_msg_sent_total", rpc("OrderService", "CreateOrder")),
        createOrderTimed: delta(orderBefore, orderAfter, "grpc_server_handling_seconds_count", rpc("OrderService", "CreateOrder")),
        getOrderNotFound: delta(orderBefore, orderAfter, "grpc_server_handled_total", rpc("OrderService", "GetOrderByUser", "NotFound")),
        getOrderSent: delta(orderBefore, orderAfter, "grpc_server_msg_sent_total", rpc("OrderService", "GetOrderByUser")),
        clientStarted: delta(orderBefore, orderAfter, "grpc_client_started_total", rpc("UserService", "GetUser")),
        clientOk: delta(orderBefore, orderAfter, "grpc_client_handled_total", rpc("UserService", "GetUser", "OK")),
        clientNotFound: delta(orderBefore, orderAfter, "grpc_client_handled_total", rpc("UserService", "GetUser", "NotFound")),
        clientTimed: delta(orderBefore, orderAfter, "grpc_client_handling_seconds_count", rpc("UserService", "GetUser")),
        clientSent: delta(orderBefore, orderAfter, "grpc_client_msg_sent_total", rpc("UserService", "GetUser")),
        clientReceived: delta(orderBefore, orderAfter, "grpc_client_msg_received_total", rpc("UserService", "GetUser")),
      },
      {
        createOrderStarted: 2,
        createOrderOk: 2,
        createOrderReceived: 2,
        createOrderSent: 2,
        createOrderTimed: 2,
        getOrderNotFound: 1,
        getOrderSent: 0,
        clientStarted: 3,
        clientOk: 2,
        clientNotFound: 1,
        clientTimed: 3,
        clientSent: 3,
        clientReceived: 2,
      },
    );
    assert.deepEqual(
      {
        createUserOk: delta(userBefore, userAfter, "grpc_server_handled_total", rpc("UserService", "CreateUser", "OK")),
        getUserStarted: delta(userBefore, userAfter, "grpc_server_started_total", rpc("UserService", "GetUser")),
        getUserOk: delta(userBefore, userAfter, "grpc_server_handled_total", rpc("UserService", "GetUser", "OK")),
        getUserNotFound: delta(userBefore, userAfter, "grpc_server_handled_total", rpc("UserService", "GetUser", "NotFound")),
        getUserTimed: delta(userBefore, userAfter, "grpc_server_handling_seconds_count", rpc("UserService", "GetUser")),
        // The user server makes no outbound calls.
        clientStarted: delta(userBefore, userAfter, "grpc_client_started_total", rpc("UserService", "GetUser")),
      },
      { createUserOk: 1, getUserStarted: 3, getUserOk: 2, getUserNotFound: 1, getUserTimed: 3, clientStarted: 0 },
    );
    const sum = valueOf(orderAfter, "grpc_server_handling_seconds_sum", rpc("OrderService", "CreateOrder"));
    assert.ok(sum > 0 && sum < 10, `handling seconds sum ${sum}`);
    // Each process times the store of the service it hosts, and only that one.
    const seconds = "switchyard_store_operation_seconds_count";
    assert.deepEqual(
      {
        userFind: delta(userBefore, userAfter, seconds, storeOp("user", "sqlite", "find", "ok")),
        userInsert: delta(userBefore, userAfter, seconds, storeOp("user", "sqlite", "insertIfAbsent", "ok")),
        userErrors: delta(userBefore, userAfter, seconds, storeOp("user", "sqlite", "find", "error")),
        userOrderStore: delta(userBefore, userAfter, seconds, storeOp("order", "sqlite", "insertIfAbsent", "ok")),
        orderInsert: delta(orderBefore, orderAfter, seconds, storeOp("order", "sqlite", "insertIfAbsent", "ok")),
        orderList: delta(orderBefore, orderAfter, seconds, storeOp("order", "sqlite", "listForUser", "ok")),
        orderUserStore: delta(orderBefore, orderAfter, seconds, storeOp("user", "sqlite", "find", "ok")),
      },
      { userFind: 3, userInsert: 1, userErrors: 0, userOrderStore: 0, orderInsert: 2, orderList: 0, orderUserStore: 0 },
    );
    assert.ok(
      valueOf(orderAfter, "switchyard_store_operation_seconds_sum", storeOp("order", "sqlite", "insertIfAbsent", "ok")) > 0,
      "store seconds sum",
    );
    // SQLite has no connection pool to report.
    assert.equal(userAfter.get("switchyard_store_pool_open_connections"), undefined);
  });

  it("shows calls in flight on both sides while they run", async () => {
    const gauges = async (): Promise<{ orderServer: number; orderClient: number; userServer: number }> => {
      const [userNow, orderNow] = [(await scrape(userMetrics)).families, (await scrape(orderMetrics)).families];
      return {
        orderServer: valueOf(orderNow, "grpc_server_in_flight_calls", rpc("OrderService", "CreateOrder")),
        orderClient: valueOf(orderNow, "grpc_client_in_flight_calls", rpc("UserService", "GetUser")),
        userServer: valueOf(userNow, "grpc_server_in_flight_calls", rpc("UserService", "GetUser")),
      };
    };
    const pending = order.createOrder({ orderId: `order-${randomUUID()}`, userId: heldUserId }, { timeoutMs: 10_000 });
    const outcome = pending.then(
      () => undefined,
      (error: unknown) => error,
    );
    await hold.entered;
    assert.deepEqual(await gauges(), { orderServer: 1, orderClient: 1, userServer: 1 });
    hold.release();
    const error = await outcome;
    assert.ok(error instanceof ClientError && error.code === Code.FAILED_PRECONDITION, String(error));
    assert.deepEqual(await gauges(), { orderServer: 0, orderClient: 0, userServer: 0 });
  });

  it("exposes go-grpc-prometheus's families, with their types, and the process's own metrics", async () => {
    const { families } = await scrape(orderMetrics);
    const expected: Record<string, MetricType> = {
      grpc_server_started_total: "counter",
      grpc_server_handled_total: "counter",
      grpc_server_msg_received_total: "counter",
      grpc_server_msg_sent_total: "counter",
      grpc_server_handling_seconds: "histogram",
      grpc_server_in_flight_calls: "gauge",
      grpc_client_started_total: "counter",
      grpc_client_handled_total: "counter",
      grpc_client_msg_received_total: "counter",
      grpc_client_msg_sent_total: "counter",
      grpc_client_handling_seconds: "histogram",
      grpc_client_in_flight_calls: "gauge",
      process_cpu_seconds_total: "counter",
      process_resident_memory_bytes: "gauge",
      nodejs_eventloop_lag_seconds: "gauge",
      nodejs_heap_size_used_bytes: "gauge",
      switchyard_store_operation_seconds: "histogram",
    };
    for (const [name, type] of Object.entries(expected)) {
      const family = families.get(name);
      assert.equal(family?.type, type, `${name} should be a ${type}`);
      assert.ok((family?.help ?? "").length > 0, `${name} has no HELP`);
    }
    const handled = families.get("grpc_server_handled_total")?.samples ?? [];
    assert.ok(handled.length > 0);
    for (const sample of handled) {
      assert.deepEqual(Object.keys(sample.labels).sort(), ["grpc_code", "grpc_method", "grpc_service", "grpc_type"]);
    }
    // Prometheus's default buckets, as go-grpc-prometheus uses.
    const buckets = (families.get("grpc_server_handling_seconds")?.samples ?? [])
      .filter((s) => s.name.endsWith("_bucket") && s.labels["grpc_method"] === "CreateOrder")
      .map((s) => s.labels["le"]);
    assert.deepEqual(buckets, ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]);
    const storeSeries = families.get("switchyard_store_operation_seconds")?.samples ?? [];
    assert.ok(storeSeries.length > 0);
    for (const sample of storeSeries) {
      const names = Object.keys(sample.labels).filter((name) => name !== "le");
      assert.deepEqual(names.sort(), ["operation", "outcome", "service", "store"]);
    }
    // Every operation of the order store, both outcomes, from the start.
    const storeCounts = storeSeries.filter((s) => s.name.endsWith("_count")).map((s) => `${s.labels["operation"]}/${s.labels["outcome"]}`);
    assert.deepEqual(storeCounts.sort(), ["insertIfAbsent/error", "insertIfAbsent/ok", "listForUser/error", "listForUser/ok"]);
  });

  it("passes promtool check metrics", async () => {
    for (const port of [userMetrics, orderMetrics]) {
      const { text } = await scrape(port);
      assert.ok(text.includes("grpc_server_handled_total{"), "scrape after calls were made");
      assertPromtoolClean(text);
    }
  });

  it("answers 404 away from /metrics", async () => {
    const response = await fetch(`http://${HOST}:${orderMetrics}/`);
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });
});

/** A database one process keeps both services' data in, and a way to make the orders table vanish for a while. */
interface Backend {
  readonly name: "SQLite" | "PostgreSQL";
  readonly store: "sqlite" | "postgres";
  /** Options for startSwitchyard. */
  readonly where: { readonly dataDir: string; readonly databaseUrl?: string };
  /** Renames the orders table away, so that order store queries fail; resolves to a function that puts it back. */
  hideOrders(): Promise<() => Promise<void>>;
  remove(): Promise<void>;
}

async function sqliteBackend(): Promise<Backend> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-store-metrics-"));
  const renameOrders = (from: string, to: string): void => {
    // A second connection to the server's file (WAL): the server's prepared statements see the change.
    const db = new Database(path.join(dataDir, "order.sqlite"));
    try {
      db.exec(`ALTER TABLE ${from} RENAME TO ${to}`);
    } finally {
      db.close();
    }
  };
  return {
    name: "SQLite",
    store: "sqlite",
    where: { dataDir },
    async hideOrders() {
      renameOrders("orders", "orders_hidden");
      return async () => renameOrders("orders_hidden", "orders");
    },
    remove: () => fs.rm(dataDir, { recursive: true, force: true }),
  };
}

async function postgresBackend(schema: TestSchema): Promise<Backend> {
  const sql = async (text: string): Promise<void> => {
    const client = new pg.Client({ connectionString: schema.url });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  return {
    name: "PostgreSQL",
    store: "postgres",
    where: { dataDir: "unused", databaseUrl: schema.url },
    async hideOrders() {
      await sql("ALTER TABLE orders RENAME TO orders_hidden");
      return () => sql("ALTER TABLE orders_hidden RENAME TO orders");
    },
    remove: () => schema.drop(),
  };
}

/** Polls `read` until `done` holds of its value (or fails after `timeoutMs`); returns that value. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) assert.fail(`condition not met in ${timeoutMs} ms; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

for (const open of [sqliteBackend, async () => postgresBackend(await createTestSchema())]) {
  describe(`store metrics of one process, ${open === sqliteBackend ? "SQLite" : "PostgreSQL"}`, () => {
    let backend: Backend;
    let app: Switchyard;
    let transport: Transport;
    let user: Client<typeof UserServiceDefinition>;
    let order: Client<typeof OrderServiceDefinition>;
    const storeFigure = (families: Map<string, Family>, service: "user" | "order", operation: string, outcome: "ok" | "error"): number =>
      valueOf(families, "switchyard_store_operation_seconds_count", storeOp(service, backend.store, operation, outcome));

    before(async () => {
      backend = await open();
      app = await startSwitchyard({
        host: HOST,
        port: 0,
        metricsPort: 0,
        drainTimeoutMs: 1_000,
        logger: silentLogger(),
        services: ["user", "order"],
        ...backend.where,
      });
      transport = createGrpcTransport({ target: `${HOST}:${app.port}`, services: [UserServiceDefinition, OrderServiceDefinition] });
      user = createClient(UserServiceDefinition, transport);
      order = createClient(OrderServiceDefinition, transport);
    });

    after(async () => {
      transport?.close();
      await app?.close();
      await backend?.remove();
    });

    it("times every store operation as calls are made, and passes promtool", async () => {
      assert.ok(app.metricsPort !== undefined);
      const before = (await scrape(app.metricsPort)).families;
      const userId = `user-${randomUUID()}`;
      const orderId = `order-${randomUUID()}`;
      await user.createUser({ userId, name: "Ada", email: "ada@example.com" });
      await order.createOrder({ orderId, userId });
      await order.createOrder({ orderId, userId }); // the replay: a read, no write
      await order.getOrderByUser({ userId });
      await order.listOrdersByUser({ userId, limit: 10 });
      await assert.rejects(user.getUser({ userId: `nobody-${randomUUID()}` }), (error: unknown) => {
        return error instanceof ClientError && error.code === Code.NOT_FOUND;
      });
      const { text, families: after } = await scrape(app.metricsPort);
      const delta = (service: "user" | "order", operation: string, outcome: "ok" | "error"): number =>
        storeFigure(after, service, operation, outcome) - storeFigure(before, service, operation, outcome);
      assert.deepEqual(
        {
          userFind: delta("user", "find", "ok"),
          userInsert: delta("user", "insertIfAbsent", "ok"),
          orderInsert: delta("order", "insertIfAbsent", "ok"),
          orderList: delta("order", "listForUser", "ok"),
          errors: ["find", "insertIfAbsent"].reduce((n, op) => n + delta("user", op, "error"), 0) +
            ["insertIfAbsent", "listForUser"].reduce((n, op) => n + delta("order", op, "error"), 0),
        },
        // find: the two CreateOrders, GetOrderByUser and ListOrdersByUser check the user, and the unknown GetUser.
        { userFind: 5, userInsert: 1, orderInsert: 2, orderList: 2, errors: 0 },
      );
      const seconds = valueOf(after, "switchyard_store_operation_seconds_sum", storeOp("order", backend.store, "insertIfAbsent", "ok"));
      assert.ok(seconds > 0 && seconds < 10, `order insert seconds ${seconds}`);
      assertPromtoolClean(text);
    });

    it("counts an operation that fails as an error, and the call as INTERNAL", async () => {
      assert.ok(app.metricsPort !== undefined);
      const userId = `user-${randomUUID()}`;
      await user.createUser({ userId, name: "Ada", email: "ada@example.com" });
      const before = (await scrape(app.metricsPort)).families;
      const restore = await backend.hideOrders();
      try {
        await assert.rejects(order.listOrdersByUser({ userId, limit: 10 }), (error: unknown) => {
          return error instanceof ClientError && error.code === Code.INTERNAL;
        });
      } finally {
        await restore();
      }
      await order.listOrdersByUser({ userId, limit: 10 });
      const after = (await scrape(app.metricsPort)).families;
      assert.deepEqual(
        {
          listErrors: storeFigure(after, "order", "listForUser", "error") - storeFigure(before, "order", "listForUser", "error"),
          listOk: storeFigure(after, "order", "listForUser", "ok") - storeFigure(before, "order", "listForUser", "ok"),
          userFindOk: storeFigure(after, "user", "find", "ok") - storeFigure(before, "user", "find", "ok"),
        },
        { listErrors: 1, listOk: 1, userFindOk: 2 },
      );
    });

    it("reports the connection pool where there is one, as it fills and drains", async () => {
      assert.ok(app.metricsPort !== undefined);
      const port = app.metricsPort;
      const pool = async (): Promise<{ open: number; idle: number; max: number; waiting: number }> => {
        const { families } = await scrape(port);
        const figure = (name: string): number => valueOf(families, `switchyard_store_pool_${name}`, { store: backend.store });
        return { open: figure("open_connections"), idle: figure("idle_connections"), max: figure("max_connections"), waiting: figure("waiting_requests") };
      };
      if (backend.store === "sqlite") {
        const { families } = await scrape(port);
        assert.equal(families.get("switchyard_store_pool_open_connections"), undefined, "SQLite has no pool");
        return;
      }
      const { families } = await scrape(port);
      for (const name of ["open_connections", "idle_connections", "max_connections", "waiting_requests"]) {
        assert.equal(families.get(`switchyard_store_pool_${name}`)?.type, "gauge", name);
      }
      const idle = await pool();
      assert.equal(idle.max, 10);
      assert.ok(idle.open >= 1 && idle.idle === idle.open && idle.waiting === 0, JSON.stringify(idle));

      // Lock the orders table from outside: every listing waits on it, holding a connection,
      // until all ten are in use and the rest queue for one.
      const userId = `user-${randomUUID()}`;
      await user.createUser({ userId, name: "Ada", email: "ada@example.com" });
      assert.ok(backend.where.databaseUrl !== undefined);
      const locker = new pg.Client({ connectionString: backend.where.databaseUrl });
      await locker.connect();
      let calls: Promise<unknown>[] = [];
      try {
        await locker.query("BEGIN");
        await locker.query("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE");
        calls = Array.from({ length: 13 }, () => order.listOrdersByUser({ userId, limit: 1 }, { timeoutMs: 9_000 }));
        const full = await eventually(pool, (figures) => figures.waiting === 3);
        assert.deepEqual(full, { open: 10, idle: 0, max: 10, waiting: 3 });
      } finally {
        await locker.query("COMMIT").finally(() => locker.end());
      }
      await Promise.all(calls);
      const drained = await eventually(pool, (figures) => figures.waiting === 0 && figures.idle === figures.open);
      assert.equal(drained.open, 10);
    });
  });
}

describe("the strict exposition parser", () => {
  it("rejects malformed expositions", () => {
    const bad = [
      "no_newline 1",
      "bad{ 1\n",
      'm{a="x" 1\n',
      'm{a="x",a="y"} 1\n',
      'm{a="\\q"} 1\n',
      "m one\n",
      "# TYPE m counter\nm -1\n",
      "# TYPE m counter\n# TYPE m counter\n",
      "m 1\nm 2\n",
      "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n",
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    ];
    for (const text of bad) assert.throws(() => parseExposition(text), assert.AssertionError, JSON.stringify(text));
  });

  it("accepts a well-formed one", () => {
    const families = parseExposition(
      '# HELP h A histogram.\n# TYPE h histogram\nh_bucket{le="1",x="a\\"b"} 1\nh_bucket{le="+Inf",x="a\\"b"} 2\nh_sum{x="a\\"b"} 3.5\nh_count{x="a\\"b"} 2\n\n# TYPE g gauge\ng NaN 1700000000000\n',
    );
    assert.equal(families.get("h")?.samples.length, 4);
    assert.equal(families.get("h")?.samples[0]?.labels["x"], 'a"b');
  });
});

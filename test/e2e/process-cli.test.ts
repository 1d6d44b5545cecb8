// The switchyard CLI as a person or a script uses it: `serve` flags, `call`
// (JSON in, JSON out, exit code 64 + status code) and `health`.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  Cleanup,
  closedPort,
  logLinesOf,
  runCli,
  startServer,
  tempDir,
  type Exit,
  type ServerProcess,
} from "../support/cli-process.js";

function parseJson(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not JSON (${(error as Error).message}):\n${text}`);
  }
  assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), `${what} is not a JSON object:\n${text}`);
  return value as Record<string, unknown>;
}

function describeExit(exit: Exit): string {
  return `exit code ${exit.code}, signal ${exit.signal}\nstdout:\n${exit.stdout}\nstderr:\n${exit.stderr}`;
}

/** `switchyard call` that must succeed; returns the parsed stdout. */
async function callOk(server: ServerProcess, method: string, json: string): Promise<Record<string, unknown>> {
  const exit = await runCli(["call", "--address", server.address, method, json]);
  assert.equal(exit.code, 0, `call ${method} ${json} failed: ${describeExit(exit)}`);
  assert.equal(exit.stderr, "", "a successful call writes nothing to stderr");
  return parseJson(exit.stdout, `the output of call ${method}`);
}

/** `switchyard call` that must fail with an error status; returns the exit and the parsed status. */
async function callFails(server: ServerProcess | string, method: string, json: string) {
  const address = typeof server === "string" ? server : server.address;
  const exit = await runCli(["call", "--address", address, method, json]);
  assert.equal(exit.stdout, "", `a failed call prints nothing on stdout: ${describeExit(exit)}`);
  return { exit, status: parseJson(exit.stderr, `the status printed by call ${method}`) };
}

/** A usage error of the CLI: exit 1, a message, and no JSON on stdout. */
function assertUsageError(exit: Exit, message: RegExp): void {
  assert.equal(exit.signal, null, describeExit(exit));
  assert.equal(exit.code, 1, `expected exit code 1: ${describeExit(exit)}`);
  assert.match(exit.stderr, message);
  assert.equal(exit.stdout, "");
  assert.ok(
    !logLinesOf(exit.stderr).some((line) => String(line.msg).startsWith("switchyard listening on")),
    "the server must not start",
  );
}

describe("switchyard serve: flags", () => {
  it("--help lists every flag and exits 0", async () => {
    const exit = await runCli(["serve", "--help"]);
    assert.equal(exit.code, 0, describeExit(exit));
    for (const flag of [
      "--port",
      "--host",
      "--data-dir",
      "--services",
      "--user-service",
      "--database-url",
      "--drain-timeout",
      "--log-level",
      "--help",
    ]) {
      assert.ok(exit.stdout.includes(flag), `serve --help does not mention ${flag}:\n${exit.stdout}`);
    }
    assert.match(exit.stdout, /^Usage: switchyard serve \[options\]/);
  });

  const rejected: ReadonlyArray<readonly [string, readonly string[], RegExp]> = [
    ["--port 99999", ["--port", "99999"], /--port <port>.*'99999' is invalid.*between 0 and 65535/],
    ["--port abc", ["--port", "abc"], /--port <port>.*'abc' is invalid/],
    ["--services foo", ["--services", "foo"], /unknown service "foo".*user, order/],
    ["--services order without --user-service", ["--services", "order"], /--services order needs --user-service/],
    ["--user-service-hedge-after without --user-service", ["--user-service-hedge-after", "50"], /--user-service-hedge-after hedges calls to --user-service/],
    ["--user-service-hedge-after soon", ["--user-service-hedge-after", "soon"], /--user-service-hedge-after <ms>.*positive number of milliseconds/],
    ["--database-url mysql://x", ["--database-url", "mysql://x"], /--database-url <url>.*expected a postgres:\/\/ or postgresql:\/\/ URL/],
    ["--drain-timeout 0", ["--drain-timeout", "0"], /--drain-timeout <ms>.*positive number of milliseconds/],
    ["--log-level loud", ["--log-level", "loud"], /--log-level <level>.*expected one of: fatal/],
    ["an unknown flag", ["--colour", "blue"], /unknown option '--colour'/],
  ];
  for (const [name, flags, message] of rejected) {
    it(`refuses ${name} with a clear error and exit code 1`, async (t) => {
      const dataDir = await tempDir(t);
      // The valid flags come first, so that the bad one is what stops the command.
      const exit = await runCli(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir, ...flags]);
      assertUsageError(exit, message);
      // The help shown after the error is the serve command's, not the top level's.
      assert.match(exit.stderr, /Usage: switchyard serve \[options\]/);
    });
  }

  it("fails with a log line and exit code 1 when the port is taken", async (t) => {
    const first = await startServer(t);
    const exit = await runCli(["serve", "--host", "127.0.0.1", "--port", String(first.port), "--data-dir", await tempDir(t)]);
    assert.equal(exit.code, 1, describeExit(exit));
    const fatal = logLinesOf(exit.stderr).find((line) => line.msg === "could not start");
    assert.ok(fatal, `no "could not start" log line: ${describeExit(exit)}`);
    assert.equal(fatal.level, 60, "logged at fatal level");
    await first.stop();
  });
});

describe("switchyard call and health against a running server", () => {
  // One server for the whole group; the last test stops it, the after() hook kills it if that failed.
  const cleanup = new Cleanup();
  let server: ServerProcess;
  before(async () => {
    server = await startServer(cleanup);
  });
  after(() => cleanup.run());

  it("does JSON in and JSON out for every method", async () => {
    const created = await callOk(server, "UserService/CreateUser", '{"user_id":"ada","name":"Ada Lovelace","email":"ada@example.com"}');
    assert.deepEqual(created, { userId: "ada", name: "Ada Lovelace", email: "ada@example.com" });

    // lowerCamelCase field names are accepted too, and the service may be fully qualified.
    const user = await callOk(server, "service.UserService/GetUser", '{"userId":"ada"}');
    assert.deepEqual(user, { userId: "ada", name: "Ada Lovelace", email: "ada@example.com" });

    const order = await callOk(server, "OrderService/CreateOrder", '{"order_id":"o-1","user_id":"ada"}');
    assert.deepEqual(order, { status: "created", userId: "ada", orderId: "o-1" });
    await callOk(server, "/service.OrderService/CreateOrder", '{"orderId":"o-2","userId":"ada"}');

    const latest = await callOk(server, "OrderService/GetOrderByUser", '{"user_id":"ada"}');
    assert.equal(latest["userId"], "ada");
    assert.ok(["o-1", "o-2"].includes(String(latest["orderId"])), `unexpected latest order ${JSON.stringify(latest)}`);

    const listed = await callOk(server, "OrderService/ListOrdersByUser", '{"user_id":"ada","limit":10}');
    const orders = listed["orders"];
    assert.ok(Array.isArray(orders), `no orders array: ${JSON.stringify(listed)}`);
    assert.deepEqual(
      (orders as Array<Record<string, unknown>>).map((o) => o["orderId"]).sort(),
      ["o-1", "o-2"],
    );
    for (const o of orders as Array<Record<string, unknown>>) {
      assert.equal(o["status"], "created");
      assert.equal(o["userId"], "ada");
    }
  });

  it("prints the status as JSON on stderr and exits 64 + code on NOT_FOUND", async () => {
    const { exit, status } = await callFails(server, "UserService/GetUser", '{"user_id":"nobody"}');
    assert.equal(exit.code, 64 + 5, describeExit(exit));
    assert.equal(status["code"], "NOT_FOUND");
    assert.equal(status["reason"], "USER_NOT_FOUND");
    assert.match(String(status["message"]), /nobody/);

    const noOrders = await callFails(server, "OrderService/GetOrderByUser", '{"user_id":"nobody"}');
    assert.equal(noOrders.exit.code, 69, describeExit(noOrders.exit));
  });

  it("exits 64 + code for other statuses, with field violations when there are some", async () => {
    const invalid = await callFails(server, "OrderService/CreateOrder", '{"order_id":"","user_id":"ada"}');
    assert.equal(invalid.exit.code, 64 + 3, describeExit(invalid.exit));
    assert.equal(invalid.status["code"], "INVALID_ARGUMENT");
    const violations = invalid.status["fieldViolations"];
    assert.ok(Array.isArray(violations) && violations.length > 0, `no fieldViolations: ${invalid.exit.stderr}`);
    assert.equal((violations[0] as Record<string, unknown>)["field"], "order_id");

    const precondition = await callFails(server, "OrderService/CreateOrder", '{"order_id":"o-9","user_id":"nobody"}');
    assert.equal(precondition.exit.code, 64 + 9, describeExit(precondition.exit));
    assert.equal(precondition.status["code"], "FAILED_PRECONDITION");

    const nobodyListening = await callFails(`127.0.0.1:${await closedPort()}`, "UserService/GetUser", '{"user_id":"ada"}');
    assert.equal(nobodyListening.exit.code, 64 + 14, describeExit(nobodyListening.exit));
    assert.equal(nobodyListening.status["code"], "UNAVAILABLE");
  });

  it("refuses an unknown method, bad JSON and unknown fields before calling", async () => {
    const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
      ["UserService/DeleteUser", "{}", /unknown method "UserService\/DeleteUser"; expected one of: UserService\/GetUser, .*OrderService\/ListOrdersByUser/],
      ["NoService/GetUser", "{}", /unknown method "NoService\/GetUser"/],
      ["UserService/GetUser", '{"user_id": ', /the request is not valid JSON/],
      ["UserService/GetUser", '["ada"]', /the request must be a JSON object/],
      ["UserService/GetUser", '{"user_id":"ada","nickname":"x"}', /GetUser has no field nickname/],
    ];
    const callsBefore = server.logs().filter((line) => line.msg === "call finished").length;
    const exits = await Promise.all(cases.map(([method, json]) => runCli(["call", "--address", server.address, method, json])));
    exits.forEach((exit, i) => {
      const [method, json, message] = cases[i] ?? ["", "", /$^/];
      assertUsageError(exit, message);
      assert.match(exit.stderr, /Usage: switchyard call/, `call ${method} ${json}: help of the call command`);
    });
    // None of them reached the server.
    assert.equal(server.logs().filter((line) => line.msg === "call finished").length, callsBefore);
  });

  it("health prints SERVING and exits 0, for the server and for each service", async () => {
    for (const service of [[], ["service.UserService"], ["service.OrderService"]]) {
      const exit = await runCli(["health", "--address", server.address, ...service]);
      assert.equal(exit.code, 0, `health ${service.join(" ")}: ${describeExit(exit)}`);
      assert.equal(exit.stdout, "SERVING\n");
    }
  });

  it("health fails with a non-zero exit for an unknown service and for a server that is not there", async () => {
    const unknown = await runCli(["health", "--address", server.address, "service.NoSuchService"]);
    assert.equal(unknown.code, 2, describeExit(unknown));
    assert.match(unknown.stderr, /health check failed: NOT_FOUND/);

    const absent = await runCli(["health", "--address", `127.0.0.1:${await closedPort()}`, "--timeout", "2000"]);
    assert.equal(absent.code, 2, describeExit(absent));
    assert.match(absent.stderr, /health check failed: UNAVAILABLE/);
  });

  it("the server stops with exit code 0 on SIGTERM", async () => {
    const exit = await server.stop("SIGTERM");
    assert.equal(exit.code, 0, describeExit(exit));
    assert.ok(server.logs().some((line) => line.msg === "stopped"));
  });
});

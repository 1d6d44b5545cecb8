// Server reflection as a stock tool sees it: `buf curl` (from @bufbuild/buf)
// lists and calls the methods of a running `switchyard serve` without .proto
// files, over grpc.reflection v1 and v1alpha.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Cleanup, REPO_ROOT, startServer, tempDir, type ServerProcess } from "../support/cli-process.js";

const BUF = path.join(REPO_ROOT, "node_modules", ".bin", "buf");

const ALL_METHODS = [
  "service.OrderService/CreateOrder",
  "service.OrderService/GetOrderByUser",
  "service.OrderService/ListOrdersByUser",
  "service.UserService/CreateUser",
  "service.UserService/GetUser",
];

interface BufResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

// buf writes a cache even for curl: a temporary one, so that nothing lands in the user's home.
let bufCacheDir: string | undefined;

/** Runs `buf curl --protocol grpc --http2-prior-knowledge <args>`; resolves with its exit code whatever it is. */
function bufCurl(args: readonly string[]): Promise<BufResult> {
  return new Promise((resolve, reject) => {
    execFile(
      BUF,
      ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--timeout", "20s", ...args],
      { cwd: REPO_ROOT, timeout: 30_000, env: { ...process.env, ...(bufCacheDir === undefined ? {} : { BUF_CACHE_DIR: bufCacheDir }) } },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== "number") {
          reject(new Error(`buf curl ${args.join(" ")} did not run: ${error.message}\n${stderr}`));
          return;
        }
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
      },
    );
  });
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .sort();
}

function parseObject(text: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    assert.ok(typeof value === "object" && value !== null && !Array.isArray(value));
    return value as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${what} is not a JSON object (${(error as Error).message}):\n${text}`);
  }
}

describe("reflection through buf curl", () => {
  const cleanup = new Cleanup();
  let server: ServerProcess;
  let base: string;
  before(async () => {
    bufCacheDir = await tempDir(cleanup, "switchyard-buf-cache-");
    server = await startServer(cleanup);
    base = `http://${server.address}`;
  });
  after(() => cleanup.run());

  it("--list-methods lists all five methods", async () => {
    const result = await bufCurl(["--list-methods", base]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result.stdout), ALL_METHODS);
  });

  it("--list-services lists the two services and nothing else", async () => {
    const result = await bufCurl(["--list-services", base]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result.stdout), ["service.OrderService", "service.UserService"]);
  });

  for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
    it(`serves reflection ${protocol} (--reflect-protocol ${protocol})`, async () => {
      const result = await bufCurl(["--reflect-protocol", protocol, "--list-methods", base]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(lines(result.stdout), ALL_METHODS);
    });
  }

  it("calls CreateUser and GetUser with JSON through reflection", async () => {
    const created = await bufCurl([
      "-d",
      '{"user_id":"u1","name":"User One","email":"u1@example.com"}',
      `${base}/service.UserService/CreateUser`,
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(parseObject(created.stdout, "CreateUser's response"), {
      userId: "u1",
      name: "User One",
      email: "u1@example.com",
    });

    for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
      const got = await bufCurl(["--reflect-protocol", protocol, "-d", '{"user_id":"u1"}', `${base}/service.UserService/GetUser`]);
      assert.equal(got.code, 0, `${protocol}: ${got.stderr}`);
      assert.deepEqual(parseObject(got.stdout, "GetUser's response"), { userId: "u1", name: "User One", email: "u1@example.com" });
    }
  });

  it("calls the OrderService methods through reflection", async () => {
    const order = await bufCurl(["-d", '{"order_id":"o1","user_id":"u1"}', `${base}/service.OrderService/CreateOrder`]);
    assert.equal(order.code, 0, order.stderr);
    assert.deepEqual(parseObject(order.stdout, "CreateOrder's response"), { status: "created", userId: "u1", orderId: "o1" });

    const listed = await bufCurl(["-d", '{"user_id":"u1","limit":5}', `${base}/service.OrderService/ListOrdersByUser`]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(parseObject(listed.stdout, "ListOrdersByUser's response"), {
      orders: [{ status: "created", userId: "u1", orderId: "o1" }],
    });
  });

  it("reports an error status the way buf curl does: JSON on stderr, exit code = status code << 3", async () => {
    const missing = await bufCurl(["-d", '{"user_id":"nobody"}', `${base}/service.UserService/GetUser`]);
    assert.equal(missing.code, 5 << 3, `${missing.stdout}${missing.stderr}`);
    const status = parseObject(missing.stderr, "the error status");
    assert.equal(status["code"], "not_found");
    assert.match(String(status["message"]), /nobody/);
  });

  it("answers reflection calls that reach a fresh server together (reflection loads on the first call)", async (t) => {
    const fresh = await startServer(t);
    const results = await Promise.all(
      ["grpc-v1", "grpc-v1alpha", "grpc-v1"].map((protocol) =>
        bufCurl(["--reflect-protocol", protocol, "--list-methods", `http://${fresh.address}`]),
      ),
    );
    for (const result of results) {
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(lines(result.stdout), ALL_METHODS);
    }
    const exit = await fresh.stop();
    assert.equal(exit.code, 0, exit.stderr);
  });

  it("a user-only process reflects only UserService", async (t) => {
    const userOnly = await startServer(t, { services: "user" });
    const result = await bufCurl(["--list-methods", `http://${userOnly.address}`]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result.stdout), ["service.UserService/CreateUser", "service.UserService/GetUser"]);
    const exit = await userOnly.stop();
    assert.equal(exit.code, 0, exit.stderr);
  });
});

/**
 * Server reflection (v1 and v1alpha, bidi streaming) and calls resolved
 * through it, driven by `buf curl` (connect-go's gRPC client, written in Go,
 * shipped in the @bufbuild/buf devDependency), on both engines.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { ENGINES, startTestServer, type TestServer } from "./support.js";

const run = promisify(execFile);
const BUF = path.resolve("node_modules/.bin/buf");

async function bufCurl(args: readonly string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: 60_000 });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: failed.stdout ?? "", stderr: failed.stderr ?? "", code: failed.code ?? -1 };
  }
}

for (const engine of ENGINES) {
  describe(`buf curl against the ${engine} engine`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(engine);
    });
    after(() => server.close());

    for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
      it(`lists methods through ${protocol} reflection`, async () => {
        const result = await bufCurl(["--reflect-protocol", protocol, "--list-methods", `http://${server.address}`]);
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(result.stdout.trim().split("\n").sort(), ["service.UserService/CreateUser", "service.UserService/GetUser"]);
      });
    }

    it("calls a method whose schema it learnt by reflection", async () => {
      const result = await bufCurl(["-d", '{"user_id":"u1"}', `http://${server.address}/service.UserService/GetUser`]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), { name: "Ada", email: "ada@example.com", userId: "u1" });
    });

    it("shows the status and its google.rpc.ErrorInfo details", async () => {
      const result = await bufCurl(["-d", '{"user_id":"missing"}', `http://${server.address}/service.UserService/GetUser`]);
      assert.notEqual(result.code, 0);
      const status = JSON.parse(result.stderr) as { code: string; message: string; details: { type: string }[] };
      assert.equal(status.code, "not_found");
      assert.equal(status.message, 'no user with id "missing"');
      assert.deepEqual(
        status.details.map((d) => d.type),
        ["google.rpc.ErrorInfo"],
      );
    });
  });
}

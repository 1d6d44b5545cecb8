/**
 * Interoperability with Python's gRPC, i.e. the gRPC C core (Debian's
 * python3-grpcio): test/interop/python_client.py runs its cases against each
 * engine. Skipped, saying why, where /usr/bin/python3 has no grpc module
 * (`apt-get install -y python3-grpcio`).
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { Code } from "../../src/toolkit/rpc/code.js";
import { ENGINES, startTestServer } from "./support.js";

const run = promisify(execFile);
const PYTHON = "/usr/bin/python3";
const SCRIPT = path.resolve("test/interop/python_client.py");

function pythonGrpcVersion(): string | undefined {
  try {
    return execFileSync(PYTHON, ["-c", "import grpc; print(grpc.__version__)"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

const version = pythonGrpcVersion();
// A missing toolchain fails the run (CI installs it in .ci/run): an interop
// check that silently skips checks nothing.
if (version === undefined) throw new Error("python3-grpcio is not installed (apt-get install -y python3-grpcio)");

interface CaseResult {
  readonly case: string;
  readonly ok: boolean;
  readonly detail: unknown;
}

const EXPECTED_CASES = [
  "unary_ok",
  "not_found_with_message",
  "percent_encoded_message",
  "deadline_exceeded",
  "deadline_propagated",
  "cancel",
  "metadata",
  "gzip_request",
  "gzip_channel",
  "large_messages",
  "unimplemented",
  "health_check",
  "health_watch",
];

for (const engine of ENGINES) {
  describe(`Python grpcio ${version ?? ""} (C core) against the ${engine} engine`, () => {
    it("passes every case of python_client.py", async () => {
      const server = await startTestServer(engine);
      try {
        let stdout: string;
        try {
          ({ stdout } = await run(PYTHON, [SCRIPT, server.address], { timeout: 120_000 }));
        } catch (error) {
          stdout = (error as { stdout?: string }).stdout ?? "";
        }
        const results = stdout
          .trim()
          .split("\n")
          .filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as CaseResult);
        assert.deepEqual(
          results.map((r) => r.case),
          EXPECTED_CASES,
        );
        const failed = results.filter((r) => !r.ok);
        assert.deepEqual(failed, [], "every case passes");
        // What the handlers saw of the deadline and the cancellation.
        const deadline = await server.nextEvent("slow-python-deadline", "aborted");
        assert.ok(deadline.kind === "aborted" && [Code.DEADLINE_EXCEEDED, Code.CANCELLED].includes(deadline.code));
        assert.deepEqual(await server.nextEvent("slow-python-cancel", "aborted"), {
          userId: "slow-python-cancel",
          kind: "aborted",
          code: Code.CANCELLED,
        });
      } finally {
        await server.close();
      }
    });
  });
}

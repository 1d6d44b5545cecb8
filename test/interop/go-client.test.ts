/**
 * Interoperability with grpc-go (Debian's golang-google-grpc-dev, built
 * offline from /usr/share/gocode): test/interop/go/client.go runs its cases,
 * health and reflection v1alpha included, against each engine. Skipped,
 * saying why, without `go` or the grpc-go sources
 * (`apt-get install -y golang-go golang-google-grpc-dev`).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { Code } from "../../src/toolkit/rpc/code.js";
import { ENGINES, startTestServer } from "./support.js";

const run = promisify(execFile);
const GOPATH = "/usr/share/gocode";
const SOURCE = path.resolve("test/interop/go");

const missing = !existsSync("/usr/bin/go")
  ? "golang-go is not installed (apt-get install -y golang-go golang-google-grpc-dev)"
  : !existsSync(path.join(GOPATH, "src/google.golang.org/grpc"))
    ? "golang-google-grpc-dev is not installed (apt-get install -y golang-google-grpc-dev)"
    : undefined;
// A missing toolchain fails the run (CI installs it in .ci/run): an interop
// check that silently skips checks nothing.
if (missing !== undefined) throw new Error(missing);

interface CaseResult {
  readonly case: string;
  readonly ok: boolean;
  readonly detail: unknown;
}

const EXPECTED_CASES = [
  "unary_ok",
  "not_found_with_details",
  "percent_encoded_message",
  "deadline_exceeded",
  "cancel",
  "metadata",
  "gzip_request",
  "large_messages",
  "unimplemented",
  "health_check",
  "health_watch",
  "reflection_v1alpha",
];

describe("grpc-go client", () => {
  let dir: string;
  let binary: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-go-interop-"));
    binary = path.join(dir, "client");
    // GOPATH mode against Debian's packaged sources: no network, no module proxy.
    await run("go", ["build", "-o", binary, "."], {
      cwd: SOURCE,
      timeout: 300_000,
      env: { ...process.env, GOPATH, GO111MODULE: "off", GOPROXY: "off", GOFLAGS: "", GOCACHE: process.env.GOCACHE ?? path.join(os.tmpdir(), "switchyard-go-cache") },
    });
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  for (const engine of ENGINES) {
    it(`passes every case of client.go against the ${engine} engine`, async () => {
      const server = await startTestServer(engine);
      try {
        let stdout: string;
        try {
          ({ stdout } = await run(binary, [server.address], { timeout: 120_000 }));
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
        assert.deepEqual(
          results.filter((r) => !r.ok),
          [],
          "every case passes",
        );
        const deadline = await server.nextEvent("slow-go-deadline", "aborted");
        assert.ok(deadline.kind === "aborted" && [Code.DEADLINE_EXCEEDED, Code.CANCELLED].includes(deadline.code));
        assert.deepEqual(await server.nextEvent("slow-go-cancel", "aborted"), { userId: "slow-go-cancel", kind: "aborted", code: Code.CANCELLED });
      } finally {
        await server.close();
      }
    });
  }
});

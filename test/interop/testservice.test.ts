/**
 * The grpc.testing.TestService interop cases (doc/interop-test-descriptions.md
 * in the gRPC repository) that apply, run by clients we did not write —
 * Python's grpcio (C core), grpc-go and @grpc/grpc-js — against TestService on each engine:
 * the http2 engine serves it through its grpc-js adapter, the grpc-js engine
 * through grpc-js itself. Everything is built offline from Debian packages:
 * the protos from grpc-proto, a descriptor set for Python and Go stubs (with
 * protoc-gen-go built from Debian's golang-github-golang-protobuf sources)
 * through the buf of our dev dependencies. A missing toolchain fails the run.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { ENGINES } from "./support.js";
import { GRPC_PROTO_ROOT, missingGrpcProto, startTestServiceServer, TEST_PROTO } from "./test-service.js";
import { type CaseResult, runGrpcJsCases } from "./testservice-grpc-js-client.js";

const run = promisify(execFile);
const PYTHON = "/usr/bin/python3";
const PYTHON_CLIENT = path.resolve("test/interop/testservice_client.py");
const GO_CLIENT = path.resolve("test/interop/go-testservice");
const GOPATH = "/usr/share/gocode";
const PROTOC_GEN_GO = "github.com/golang/protobuf/protoc-gen-go";
const BUF = path.resolve("node_modules/.bin/buf");
const PROTOS = ["grpc/testing/test.proto", "grpc/testing/messages.proto", "grpc/testing/empty.proto"];

/** Every case each client runs, in its order; each must pass on both engines. */
const CASES = [
  "empty_unary",
  "large_unary",
  "client_compressed_unary",
  "server_compressed_unary",
  "client_streaming",
  "client_compressed_streaming",
  "server_streaming",
  "ping_pong",
  "empty_stream",
  "half_duplex",
  "custom_metadata",
  "status_code_and_message",
  "special_status_message",
  "unimplemented_method",
  "unimplemented_service",
  "cancel_after_begin",
  "cancel_after_first_response",
  "timeout_on_sleeping_server",
  // Ours, not the spec's: a bidi call the server ends while the client still sends.
  "early_status_bidi",
];

function pythonHasGrpc(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import grpc, google.protobuf"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const missing = [
  missingGrpcProto(),
  existsSync(BUF) ? undefined : "node_modules/.bin/buf is missing: run npm ci",
  pythonHasGrpc() ? undefined : "/usr/bin/python3 cannot import grpc: apt-get install -y python3-grpcio",
  existsSync("/usr/bin/go") ? undefined : "go is missing: apt-get install -y golang-go",
  existsSync(path.join(GOPATH, "src/google.golang.org/grpc")) ? undefined : "grpc-go sources are missing: apt-get install -y golang-google-grpc-dev",
  existsSync(path.join(GOPATH, "src", PROTOC_GEN_GO, "grpc/grpc.go"))
    ? undefined
    : "protoc-gen-go 1.3 sources (with its grpc plugin) are missing: apt-get install -y golang-github-golang-protobuf-1-3-dev",
].filter((reason) => reason !== undefined);
// A missing toolchain fails the run (CI installs it in .ci/run): an interop
// check that silently skips checks nothing.
if (missing.length > 0) throw new Error(`cannot run the TestService interop cases: ${missing.join("; ")}`);

/** Runs a client and returns its JSON result lines; a non-zero exit still yields what it printed. */
async function runClient(file: string, args: readonly string[]): Promise<CaseResult[]> {
  let stdout: string;
  let stderr = "";
  try {
    ({ stdout, stderr } = await run(file, [...args], { timeout: 120_000, maxBuffer: 8 << 20 }));
  } catch (error) {
    stdout = (error as { stdout?: string }).stdout ?? "";
    stderr = (error as { stderr?: string }).stderr ?? String(error);
  }
  const results = stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as CaseResult);
  if (results.length === 0) throw new Error(`${path.basename(file)} reported nothing: ${stderr.slice(0, 2000)}`);
  return results;
}

function assertAllPassed(results: readonly CaseResult[]): void {
  assert.deepEqual(
    results.map((r) => r.case),
    CASES,
  );
  assert.deepEqual(
    results.filter((r) => !r.ok),
    [],
    "every case passes",
  );
}

describe("grpc.testing.TestService interop cases", () => {
  let dir: string;
  let descriptorSet: string;
  let goClient: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-testservice-"));
    const goEnv = {
      ...process.env,
      GO111MODULE: "off",
      GOPROXY: "off",
      GOFLAGS: "",
      // Shared with go-client.test.ts: a rebuild reuses the compiled grpc-go.
      GOCACHE: process.env.GOCACHE ?? path.join(os.tmpdir(), "switchyard-go-cache"),
    };
    // Python: a descriptor set of test.proto and its imports.
    descriptorSet = path.join(dir, "testservice.binpb");
    await run(BUF, ["build", GRPC_PROTO_ROOT, "--path", path.join(GRPC_PROTO_ROOT, TEST_PROTO), "-o", descriptorSet], { timeout: 60_000 });
    // Go: protoc-gen-go from Debian's sources, run by buf (no protoc needed).
    const plugin = path.join(dir, "protoc-gen-go");
    await run("go", ["build", "-o", plugin, PROTOC_GEN_GO], { timeout: 300_000, env: { ...goEnv, GOPATH } });
    const generated = path.join(dir, "gen");
    const mappings = PROTOS.map((proto) => `M${proto}=switchyard/grpc_testing`);
    const template = { version: "v2", plugins: [{ local: plugin, out: generated, opt: ["plugins=grpc", "paths=source_relative", ...mappings] }] };
    await run(BUF, ["generate", GRPC_PROTO_ROOT, ...PROTOS.flatMap((proto) => ["--path", path.join(GRPC_PROTO_ROOT, proto)]), "--template", JSON.stringify(template)], {
      timeout: 60_000,
    });
    // GOPATH mode: the generated package under our own GOPATH entry, grpc-go from Debian's.
    const gopath = path.join(dir, "gopath");
    const pkg = path.join(gopath, "src/switchyard/grpc_testing");
    await fs.mkdir(pkg, { recursive: true });
    for (const proto of PROTOS) {
      const file = proto.replace(/\.proto$/, ".pb.go");
      await fs.copyFile(path.join(generated, file), path.join(pkg, path.basename(file)));
    }
    goClient = path.join(dir, "client");
    await run("go", ["build", "-o", goClient, "."], { cwd: GO_CLIENT, timeout: 300_000, env: { ...goEnv, GOPATH: `${gopath}:${GOPATH}` } });
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  for (const engine of ENGINES) {
    for (const client of ["python", "go", "grpc-js"] as const) {
      const name = { python: "Python grpcio", go: "grpc-go", "grpc-js": "@grpc/grpc-js" }[client];
      it(`passes every case with the ${name} client against the ${engine} engine`, async () => {
        const server = await startTestServiceServer(engine);
        try {
          const results =
            client === "python"
              ? await runClient(PYTHON, [PYTHON_CLIENT, descriptorSet, server.address])
              : client === "go"
                ? await runClient(goClient, [server.address])
                : await runGrpcJsCases(server.address);
          assertAllPassed(results);
          // What the client cannot see: the handler of the call
          // cancel_after_first_response cancelled was told. grpc-go and the C
          // core cancel with RST_STREAM alone; grpc-js's client half-closes
          // first, after which a handler may rightly finish the call before
          // the reset arrives, so there is nothing to check for it.
          if (client !== "grpc-js") {
            await server.waitFor((event) => event.case === "cancel_after_first_response" && event.kind === "cancelled");
          }
        } finally {
          await server.close();
        }
      });
    }
  }
});

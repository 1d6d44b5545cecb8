// Certificates replaced on disk are picked up without a restart: the server's
// certificate, the CA it checks clients with, and a client's own certificate.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { startSwitchyard, type Switchyard } from "../../src/app/switchyard.js";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { createLogger, silentLogger } from "../../src/toolkit/log/logger.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { loadClientTls, type ClientTls, type ClientTlsOptions } from "../../src/toolkit/tls/client-tls.js";
import { loadServerTls, type ServerTlsOptions } from "../../src/toolkit/tls/server-tls.js";
import { certDir, makeCertSet, replaceFile, servedSerial, serialOf, type CertSet } from "../support/certs.js";
import { Cleanup } from "../support/cli-process.js";

const HOST = "127.0.0.1";
const RELOAD_MS = 100;

/** A logger whose JSON lines the test can read. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  let text = "";
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString("utf8");
      callback();
    },
  });
  return {
    logger: createLogger({ level: "info", destination }),
    lines: () =>
      text
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

async function startServer(scope: Cleanup, tls: ServerTlsOptions, logger = silentLogger()): Promise<Switchyard> {
  const dataDir = await certDir(scope, "switchyard-reload-data-");
  const server = await startSwitchyard({ services: ["user"], host: HOST, port: 0, dataDir, drainTimeoutMs: 500, logger, tls });
  scope.after(() => server.close());
  return server;
}

/** One GetUser-free call (CreateUser) on a brand-new channel: every attempt does a new TLS handshake. */
async function callOnNewChannel(port: number, tls: ClientTlsOptions | ClientTls): Promise<Code | "OK"> {
  const loaded = "credentials" in tls ? tls : await loadClientTls(tls);
  const transport = createGrpcTransport({
    target: `localhost:${port}`,
    services: [UserServiceDefinition],
    retry: false,
    credentials: loaded.credentials,
    channelOptions: loaded.channelOptions,
  });
  try {
    const user = createClient(UserServiceDefinition, transport, { defaultTimeoutMs: 3_000 });
    await user.createUser({ userId: `user-${randomUUID()}`, name: "Ada", email: "ada@example.com" });
    return "OK";
  } catch (error) {
    if (error instanceof ClientError) return error.code;
    throw error;
  } finally {
    transport.close();
    if (loaded !== tls) loaded.close();
  }
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Copies a file into `dir` under `name`, returning the new path (the file a server will be pointed at). */
async function copyInto(dir: string, source: string, name: string): Promise<string> {
  const target = path.join(dir, name);
  await fs.copyFile(source, target);
  return target;
}

describe("certificate reload without a restart", { concurrency: true }, () => {
  const scope = new Cleanup();
  // Two unrelated CAs, each with a server and a client certificate. Tests
  // never change these files: they copy them to where a server reads them.
  let a: CertSet;
  let b: CertSet;
  before(async () => {
    [a, b] = await Promise.all([makeCertSet(scope), makeCertSet(scope)]);
  });
  after(() => scope.run());

  it("serves a new server certificate once both files are replaced, and ignores a half-done rotation", async () => {
    const served = await certDir(scope);
    const certFile = await copyInto(served, a.server, "server.pem");
    const keyFile = await copyInto(served, a.serverKey, "server-key.pem");
    const captured = capturingLogger();
    const server = await startServer(scope, { certFile, keyFile, reloadIntervalMs: RELOAD_MS }, captured.logger);
    const [serialA, serialB] = await Promise.all([serialOf(a.server), serialOf(b.server)]);
    assert.equal(await servedSerial(server.port), serialA);
    assert.equal(await callOnNewChannel(server.port, { caFile: a.ca }), "OK");
    assert.equal(await callOnNewChannel(server.port, { caFile: b.ca }), Code.UNAVAILABLE);

    // A channel opened before the rotation.
    const beforeTls = await loadClientTls({ caFile: a.ca });
    const early = createGrpcTransport({
      target: `localhost:${server.port}`,
      services: [UserServiceDefinition],
      retry: false,
      credentials: beforeTls.credentials,
    });
    scope.after(() => {
      early.close();
      beforeTls.close();
    });
    const beforeClient = createClient(UserServiceDefinition, early);
    await beforeClient.createUser({ userId: `user-${randomUUID()}`, name: "Ada", email: "ada@example.com" });

    // Half a rotation: the new certificate, the old key. The server keeps the old pair.
    await replaceFile(certFile, b.server);
    await until("a warning about the unusable certificate", async () =>
      captured.lines().find((line) => line["msg"] === "new TLS certificate not usable; keeping the previous one"),
    );
    assert.equal(await servedSerial(server.port), serialA, "a mismatched pair must not be served");
    assert.equal(await callOnNewChannel(server.port, { caFile: a.ca }), "OK", "the server must keep serving");

    await replaceFile(keyFile, b.serverKey);
    await until("the new certificate to be served", async () => ((await servedSerial(server.port)) === serialB ? true : undefined));
    assert.equal(await callOnNewChannel(server.port, { caFile: b.ca }), "OK");
    assert.equal(await callOnNewChannel(server.port, { caFile: a.ca }), Code.UNAVAILABLE);
    const reloaded = captured.lines().find((line) => line["msg"] === "TLS certificate reloaded");
    assert.equal(reloaded?.["serial"], serialB);
    assert.ok(!JSON.stringify(captured.lines()).includes("PRIVATE KEY"), "no key material in the logs");

    // The connection made before the rotation goes on with its session.
    await beforeClient.createUser({ userId: `user-${randomUUID()}`, name: "Ada", email: "ada@example.com" });
  });

  it("checks client certificates against a replaced CA file", async () => {
    const served = await certDir(scope);
    const clientCaFile = await copyInto(served, a.ca, "clients-ca.pem");
    const server = await startServer(scope, { certFile: a.server, keyFile: a.serverKey, clientCaFile, reloadIntervalMs: RELOAD_MS });
    const asA: ClientTlsOptions = { caFile: a.ca, certFile: a.client, keyFile: a.clientKey };
    const asB: ClientTlsOptions = { caFile: a.ca, certFile: b.client, keyFile: b.clientKey };
    assert.equal(await callOnNewChannel(server.port, asA), "OK");
    assert.equal(await callOnNewChannel(server.port, asB), Code.UNAVAILABLE);

    await replaceFile(clientCaFile, b.ca);
    await until("clients of the new CA to get in", async () => ((await callOnNewChannel(server.port, asB)) === "OK" ? true : undefined));
    assert.equal(await callOnNewChannel(server.port, asA), Code.UNAVAILABLE);
  });

  it("a client presents its replaced certificate on new connections", async () => {
    const server = await startServer(scope, { certFile: a.server, keyFile: a.serverKey, clientCaFile: a.ca });
    const own = await certDir(scope);
    const certFile = await copyInto(own, b.client, "client.pem");
    const keyFile = await copyInto(own, b.clientKey, "client-key.pem");
    const tls = await loadClientTls({ caFile: a.ca, certFile, keyFile, reloadIntervalMs: RELOAD_MS });
    scope.after(() => tls.close());
    assert.equal(await callOnNewChannel(server.port, tls), Code.UNAVAILABLE, "B's client certificate is foreign to the server");

    await replaceFile(keyFile, a.clientKey);
    await replaceFile(certFile, a.client);
    await until("the client to present its new certificate", async () => ((await callOnNewChannel(server.port, tls)) === "OK" ? true : undefined));
  });

  it("gives servers other than grpc-js (node:http2) their options and each reload", async () => {
    const served = await certDir(scope);
    const certFile = await copyInto(served, a.server, "server.pem");
    const keyFile = await copyInto(served, a.serverKey, "server-key.pem");
    const tls = await loadServerTls({ certFile, keyFile, reloadIntervalMs: RELOAD_MS });
    scope.after(() => tls.close());
    const options = tls.secureServerOptions();
    assert.equal(options.requestCert, false);
    const server = http2.createSecureServer({ ...options, allowHTTP1: false });
    const stop = tls.onReload((next) => server.setSecureContext(next));
    scope.after(() => {
      stop();
      return new Promise((resolve) => server.close(resolve));
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    const { port } = server.address() as AddressInfo;
    assert.equal(await servedSerial(port), await serialOf(a.server));

    await replaceFile(keyFile, b.serverKey);
    await replaceFile(certFile, b.server);
    const serialB = await serialOf(b.server);
    await until("node:http2 to serve the new certificate", async () => ((await servedSerial(port)) === serialB ? true : undefined));
  });
});

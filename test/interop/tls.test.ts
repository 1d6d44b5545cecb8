/**
 * TLS and mTLS on both engines, seen by @grpc/grpc-js clients: the
 * certificates of loadServerTls, the caller's verified identity in the call
 * context, refusal of plaintext and of clients without a certificate, and
 * certificate rotation without a restart.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { loadServerTls, type ServerTls } from "../../src/toolkit/tls/server-tls.js";
import { makeCertSet, ORDER_SERVICE_ID, replaceFile, serialOf, servedSerial } from "../support/certs.js";
import { ENGINES, failure, getUser, startTestServer, success, type TestServer } from "./support.js";
import { Cleanup } from "../support/cli-process.js";

async function start(scope: Cleanup, engine: (typeof ENGINES)[number], tls: ServerTls, interceptors: ServerInterceptor[] = []): Promise<TestServer> {
  scope.after(() => tls.close());
  const server = await startTestServer(engine, { tls, interceptors });
  scope.after(() => server.close());
  return server;
}

function client(scope: Cleanup, server: TestServer, credentials: grpc.ChannelCredentials): grpc.Client {
  const created = new grpc.Client(server.address, credentials, { "grpc.ssl_target_name_override": "localhost", "grpc.default_authority": "localhost" });
  scope.after(() => created.close());
  return created;
}

const soon = (): Date => new Date(Date.now() + 5_000);

for (const engine of ENGINES) {
  describe(`TLS on the ${engine} engine`, () => {
    const scope = new Cleanup();
    after(() => scope.run());

    it("serves TLS to clients that trust its CA, and refuses plaintext", async () => {
      const certs = await makeCertSet(scope);
      const server = await start(scope, engine, await loadServerTls({ certFile: certs.server, keyFile: certs.serverKey }));
      const ca = await fs.readFile(certs.ca);
      assert.equal(success(await getUser(client(scope, server, grpc.credentials.createSsl(ca)), "u1", { deadline: soon() })).name, "Ada");
      const plaintext = client(scope, server, grpc.credentials.createInsecure());
      assert.equal(failure(await getUser(plaintext, "u1", { deadline: soon() })).code, grpc.status.UNAVAILABLE);
    });

    it("with a client CA, requires a client certificate and gives the handler the caller's identity", async () => {
      const certs = await makeCertSet(scope);
      const identities: (string | undefined)[] = [];
      const server = await start(scope, engine, await loadServerTls({ certFile: certs.server, keyFile: certs.serverKey, clientCaFile: certs.ca }), [
        (call, next) => {
          identities.push(call.context.peerIdentity);
          return next();
        },
      ]);
      const [ca, cert, key] = await Promise.all([fs.readFile(certs.ca), fs.readFile(certs.client), fs.readFile(certs.clientKey)]);
      assert.equal(success(await getUser(client(scope, server, grpc.credentials.createSsl(ca, key, cert)), "u1", { deadline: soon() })).name, "Ada");
      assert.deepEqual(identities, [ORDER_SERVICE_ID]);
      const anonymous = client(scope, server, grpc.credentials.createSsl(ca));
      assert.equal(failure(await getUser(anonymous, "u1", { deadline: soon() })).code, grpc.status.UNAVAILABLE);
      assert.deepEqual(identities, [ORDER_SERVICE_ID], "no call got through without a certificate");
    });

    it("presents a replaced certificate to new connections without a restart", async () => {
      const certs = await makeCertSet(scope);
      const next = await makeCertSet(scope);
      const server = await start(scope, engine, await loadServerTls({ certFile: certs.server, keyFile: certs.serverKey, reloadIntervalMs: 100 }));
      assert.equal(await servedSerial(server.port), await serialOf(certs.server));
      await replaceFile(certs.serverKey, next.serverKey);
      await replaceFile(certs.server, next.server);
      const wanted = await serialOf(next.server);
      const deadline = Date.now() + 10_000;
      while ((await servedSerial(server.port)) !== wanted) {
        assert.ok(Date.now() < deadline, "the new certificate was not served within 10 s");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
  });
}

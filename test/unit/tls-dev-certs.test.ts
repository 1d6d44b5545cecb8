// `switchyard certs dev`'s engine: real openssl, real files.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { createDevCertificates, DevCertificateError } from "../../src/toolkit/tls/dev-certs.js";

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-devcerts-"));
  dirs.push(dir);
  return dir;
}

const CLIENT = ["spiffe://switchyard/order-service", "order-service"];

describe("createDevCertificates", { concurrency: true }, () => {
  after(() => Promise.all(dirs.map((dir) => fs.rm(dir, { recursive: true, force: true }))));

  it("writes a CA, a server and a client certificate that chain to it, keys 0600", async () => {
    const dir = path.join(await freshDir(), "nested", "certs");
    const files = await createDevCertificates({ outDir: dir, clientNames: CLIENT });
    assert.deepEqual((await fs.readdir(dir)).sort(), ["ca-key.pem", "ca.pem", "client-key.pem", "client.pem", "server-key.pem", "server.pem"]);
    for (const key of [files.caKey, files.serverKey, files.clientKey]) {
      assert.equal((await fs.stat(key)).mode & 0o777, 0o600, `${key} must be private`);
    }
    const ca = new X509Certificate(await fs.readFile(files.ca));
    const server = new X509Certificate(await fs.readFile(files.server));
    const client = new X509Certificate(await fs.readFile(files.client));
    assert.ok(ca.ca, "ca.pem is a CA");
    assert.ok(server.verify(ca.publicKey) && server.checkIssued(ca), "server.pem is signed by the CA");
    assert.ok(client.verify(ca.publicKey) && client.checkIssued(ca), "client.pem is signed by the CA");
    assert.ok(!server.ca && !client.ca);
    assert.equal(server.subjectAltName, "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    assert.equal(server.checkHost("localhost"), "localhost");
    assert.equal(server.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(client.subjectAltName, "URI:spiffe://switchyard/order-service, DNS:order-service");
    assert.deepEqual(server.keyUsage, ["1.3.6.1.5.5.7.3.1"], "server.pem is for TLS servers");
    assert.deepEqual(client.keyUsage, ["1.3.6.1.5.5.7.3.2"], "client.pem is for TLS clients");
    assert.notEqual(server.serialNumber, client.serialNumber);
    assert.deepEqual((await fs.readdir(dir)).filter((name) => name.startsWith(".")), [], "no work files left");
  });

  it("takes other names and a validity", async () => {
    const files = await createDevCertificates({
      outDir: await freshDir(),
      serverNames: ["users.internal", "10.1.2.3"],
      clientNames: ["billing"],
      days: 2,
    });
    const server = new X509Certificate(await fs.readFile(files.server));
    assert.equal(server.subjectAltName, "DNS:users.internal, IP Address:10.1.2.3");
    assert.equal(new X509Certificate(await fs.readFile(files.client)).subjectAltName, "DNS:billing");
    const days = (Date.parse(server.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 1.9 && days <= 2.01, `valid for ${days} days`);
  });

  it("refuses to replace existing files unless asked, then replaces them all", async () => {
    const dir = await freshDir();
    const first = await createDevCertificates({ outDir: dir, clientNames: CLIENT });
    const before = await fs.readFile(first.ca, "utf8");
    await assert.rejects(createDevCertificates({ outDir: dir, clientNames: CLIENT }), (error: Error) => {
      assert.ok(error instanceof DevCertificateError);
      assert.match(error.message, /ca\.pem.* already exist; pass --force/);
      return true;
    });
    assert.equal(await fs.readFile(first.ca, "utf8"), before, "nothing changed");
    await createDevCertificates({ outDir: dir, clientNames: CLIENT, overwrite: true });
    assert.notEqual(await fs.readFile(first.ca, "utf8"), before);
    assert.equal((await fs.stat(first.serverKey)).mode & 0o777, 0o600);
  });

  it("says what to do when openssl is missing", async () => {
    await assert.rejects(
      createDevCertificates({ outDir: await freshDir(), clientNames: CLIENT, openssl: "/nonexistent/openssl" }),
      (error: Error) => error instanceof DevCertificateError && /not installed or not on PATH.*Install OpenSSL/.test(error.message),
    );
  });

  it("refuses names that are not DNS names, IP addresses or URIs", async () => {
    for (const name of ["bad name", "a,b", "x\nDNS:evil", ""]) {
      await assert.rejects(
        createDevCertificates({ outDir: await freshDir(), serverNames: [name], clientNames: CLIENT }),
        DevCertificateError,
        JSON.stringify(name),
      );
    }
    await assert.rejects(createDevCertificates({ outDir: await freshDir(), clientNames: [] }), DevCertificateError);
    await assert.rejects(createDevCertificates({ outDir: await freshDir(), clientNames: CLIENT, days: 0 }), DevCertificateError);
  });
});

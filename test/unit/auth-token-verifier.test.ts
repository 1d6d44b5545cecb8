// The bearer-token verifier on its own: which tokens prove a principal, and
// what a caller is told (UNAUTHENTICATED, never the token) when one does not.
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { base64url, exportJWK, generateKeyPair } from "jose";
import { createTokenVerifier, loadTokenVerifier, type TokenVerifier } from "../../src/toolkit/auth/token-verifier.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { AUDIENCE, hs256, ISSUER, makeTestKeys, signToken, type TestKeys } from "../support/tokens.js";

async function refusal(verifier: TokenVerifier, token: string, reason: string, message?: RegExp): Promise<RpcError> {
  const error = await verifier.verify(token).then(
    () => assert.fail("the token was accepted"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof RpcError, `expected an RpcError, got ${String(error)}`);
  assert.equal(Code[error.code], "UNAUTHENTICATED");
  assert.equal(error.reason, reason, error.message);
  if (message) assert.match(error.message, message);
  // Nothing of the token comes back, not even its signature part.
  for (const part of token.split(".")) if (part.length >= 8) assert.ok(!error.message.includes(part), error.message);
  return error;
}

describe("token verifier", () => {
  let dir: string;
  let keys: TestKeys;
  let verifier: TokenVerifier;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-auth-unit-"));
    keys = await makeTestKeys(dir);
    verifier = await loadTokenVerifier({
      secretFile: keys.secretFile,
      publicKeyFiles: [keys.rsaPublicKeyFile],
      jwksFile: keys.jwksFile,
      issuer: ISSUER,
      audience: AUDIENCE,
    });
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it("accepts HS256, RS256 and ES256 (JWKS, by kid) tokens, and reads the principal", async () => {
    const fromSecret = await verifier.verify(await hs256(keys, { sub: "alice", scope: "users:read  orders:read" }));
    assert.deepEqual(fromSecret, { subject: "alice", issuer: ISSUER, scopes: ["users:read", "orders:read"], roles: [] });
    const fromRsa = await verifier.verify(await signToken(keys.rsa, "RS256", { sub: "bob", scp: ["orders:write"], roles: ["admin"] }));
    assert.deepEqual(fromRsa, { subject: "bob", issuer: ISSUER, scopes: ["orders:write"], roles: ["admin"] });
    const fromJwks = await verifier.verify(await signToken(keys.ec, "ES256", { sub: "carol" }, "ec-1"));
    assert.equal(fromJwks.subject, "carol");
    // Without a kid, every key of the right kind is tried.
    assert.equal((await verifier.verify(await signToken(keys.ec, "ES256", { sub: "dave" }))).subject, "dave");
  });

  it("merges scope and scp, and ignores non-string entries", async () => {
    const principal = await verifier.verify(
      await hs256(keys, { scope: "a b", scp: ["b", "c"], extra: { roles: ["r", 7, ""] as unknown as string[] } }),
    );
    assert.deepEqual(principal.scopes, ["a", "b", "c"]);
    assert.deepEqual(principal.roles, ["r"]);
  });

  it("refuses an expired token, saying when it expired", async () => {
    await refusal(verifier, await hs256(keys, { expiresIn: -3600 }), "TOKEN_EXPIRED", /expired at \d{4}-.*get a new one/);
  });

  it("tolerates a little clock skew on exp", async () => {
    await verifier.verify(await hs256(keys, { expiresIn: -5 }));
  });

  it("refuses a token without exp: tokens must expire", async () => {
    await refusal(verifier, await hs256(keys, { noExp: true }), "TOKEN_CLAIM_MISSING", /"exp"/);
  });

  it("refuses a token for another audience, naming the expected one", async () => {
    await refusal(verifier, await hs256(keys, { aud: "billing" }), "TOKEN_AUDIENCE_MISMATCH", /"aud" must include "switchyard"/);
  });

  it("refuses a token from another issuer", async () => {
    await refusal(verifier, await hs256(keys, { iss: "https://evil.test" }), "TOKEN_ISSUER_MISMATCH", /"iss" must be/);
  });

  it("refuses a token signed with another secret or key", async () => {
    await refusal(verifier, await signToken(randomBytes(32), "HS256"), "TOKEN_SIGNATURE_INVALID", /signature/);
    const other = await generateKeyPair("RS256");
    await refusal(verifier, await signToken(other.privateKey, "RS256"), "TOKEN_SIGNATURE_INVALID");
    const otherEc = await generateKeyPair("ES256");
    await refusal(verifier, await signToken(otherEc.privateKey, "ES256", {}, "ec-1"), "TOKEN_SIGNATURE_INVALID");
  });

  it("refuses a tampered payload", async () => {
    const token = await hs256(keys, { scope: "users:read" });
    const [header, , signature] = token.split(".");
    const forged = base64url.encode(JSON.stringify({ sub: "alice", scope: "admin", aud: AUDIENCE, iss: ISSUER, exp: 9_999_999_999 }));
    await refusal(verifier, `${header}.${forged}.${signature}`, "TOKEN_SIGNATURE_INVALID");
  });

  it('refuses alg "none" and algorithms no key of this server verifies', async () => {
    const none = `${base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }))}.${base64url.encode(
      JSON.stringify({ sub: "alice", aud: AUDIENCE, iss: ISSUER, exp: 9_999_999_999 }),
    )}.`;
    await refusal(verifier, none, "TOKEN_ALGORITHM_REJECTED", /"none"; this server accepts/);
    await refusal(verifier, await signToken(keys.secret, "HS512"), "TOKEN_ALGORITHM_REJECTED", /"HS512"/);
  });

  it("refuses the RSA public key used as an HMAC secret (algorithm confusion)", async () => {
    const onlyRsa = await loadTokenVerifier({ publicKeyFiles: [keys.rsaPublicKeyFile], audience: AUDIENCE });
    const pem = await fs.readFile(keys.rsaPublicKeyFile);
    await refusal(onlyRsa, await signToken(new Uint8Array(pem), "HS256"), "TOKEN_ALGORITHM_REJECTED", /accepts RS256/);
  });

  it("refuses what is not a JWT", async () => {
    await refusal(verifier, "not-a-jwt", "TOKEN_MALFORMED", /not a JWT/);
    await refusal(verifier, "a.b.c", "TOKEN_MALFORMED");
    await refusal(verifier, "x".repeat(10_000), "TOKEN_MALFORMED", /longer than/);
  });

  it("refuses a token without sub", async () => {
    const now = Math.floor(Date.now() / 1000);
    const { SignJWT } = await import("jose");
    const token = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setAudience(AUDIENCE).setIssuer(ISSUER).setExpirationTime(now + 60).sign(keys.secret);
    await refusal(verifier, token, "TOKEN_CLAIM_MISSING", /"sub"/);
  });

  it("does not check issuer and audience unless configured", async () => {
    const lax = createTokenVerifier({ secret: keys.secret });
    assert.equal((await lax.verify(await hs256(keys, { aud: "anything", iss: "anyone" }))).subject, "alice");
    assert.match(lax.description, /^algorithms HS256$/);
  });

  it("describes what it accepts without any key material", () => {
    assert.match(verifier.description, /HS256/);
    assert.match(verifier.description, /RS256/);
    assert.match(verifier.description, /ES256/);
    assert.match(verifier.description, /audience switchyard/);
    assert.ok(!verifier.description.includes(Buffer.from(keys.secret).toString("utf8")));
  });
});

describe("loading verification keys", () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-auth-keys-"));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it("refuses a short secret without printing it", async () => {
    const file = path.join(dir, "short");
    await fs.writeFile(file, "hunter2-short-secret\n");
    await assert.rejects(loadTokenVerifier({ secretFile: file }), (error: Error) => {
      assert.match(error.message, /is 20 bytes; HS256 needs at least 32/);
      assert.ok(!error.message.includes("hunter2"), error.message);
      return true;
    });
  });

  it("names a missing file", async () => {
    const file = path.join(dir, "nope.pem");
    await assert.rejects(loadTokenVerifier({ publicKeyFiles: [file] }), new RegExp(`cannot read the JWT public key file ${file}: ENOENT`));
  });

  it("refuses a PEM file without a key, without printing it", async () => {
    const file = path.join(dir, "garbage.pem");
    await fs.writeFile(file, "-----BEGIN PUBLIC KEY-----\nc2VjcmV0LWlzaA==\n-----END PUBLIC KEY-----\n");
    await assert.rejects(loadTokenVerifier({ publicKeyFiles: [file] }), (error: Error) => {
      assert.match(error.message, /holds no PEM public key/);
      assert.ok(!error.message.includes("c2VjcmV0"), error.message);
      return true;
    });
  });

  it("accepts a private key PEM by mistake, keeping only its public half", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const file = path.join(dir, "ec-private.pem");
    await fs.writeFile(file, privateKey.export({ format: "pem", type: "pkcs8" }));
    const verifier = await loadTokenVerifier({ publicKeyFiles: [file] });
    assert.equal((await verifier.verify(await signToken(privateKey, "ES256"))).subject, "alice");
  });

  it("refuses a JWKS with a private or secret key, and one that is not a JWKS", async () => {
    const ec = await generateKeyPair("ES256", { extractable: true });
    const privateJwks = path.join(dir, "private.jwks");
    await fs.writeFile(privateJwks, JSON.stringify({ keys: [await exportJWK(ec.privateKey)] }));
    await assert.rejects(loadTokenVerifier({ jwksFile: privateJwks }), /is a private key/);
    const octJwks = path.join(dir, "oct.jwks");
    await fs.writeFile(octJwks, JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] }));
    await assert.rejects(loadTokenVerifier({ jwksFile: octJwks }), (error: Error) => /shared secret/.test(error.message) && !error.message.includes("c2VjcmV0"));
    const notJwks = path.join(dir, "array.jwks");
    await fs.writeFile(notJwks, "[]");
    await assert.rejects(loadTokenVerifier({ jwksFile: notJwks }), /not a JSON Web Key Set/);
  });

  it("needs at least one key", () => {
    assert.throws(() => createTokenVerifier({}), /no JWT verification key/);
  });
});

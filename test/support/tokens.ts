// Real JWTs for the auth tests: keys made with jose (HS256 secret, RS256 and
// ES256 key pairs), written to files the way an operator would give them.
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWTPayload, type KeyObject, SignJWT } from "jose";

export const AUDIENCE = "switchyard";
export const ISSUER = "https://issuer.test";

/** Private signing keys and the files that hold what the server verifies with. */
export interface TestKeys {
  /** HS256 secret (its file holds it followed by a newline). */
  readonly secret: Uint8Array;
  readonly secretFile: string;
  readonly rsa: CryptoKey;
  /** PEM SPKI public key of `rsa`. */
  readonly rsaPublicKeyFile: string;
  readonly ec: CryptoKey;
  /** JWKS of `ec`'s public key, kid `ec-1`. */
  readonly jwksFile: string;
}

/** Makes fresh keys and writes the verification files into `dir`. */
export async function makeTestKeys(dir: string): Promise<TestKeys> {
  // Printable, so that a test can search logs for it.
  const secret = Buffer.from(randomBytes(24).toString("hex"), "utf8");
  const secretFile = path.join(dir, "jwt-secret");
  await fs.writeFile(secretFile, Buffer.concat([secret, Buffer.from("\n")]), { mode: 0o600 });
  const rsa = await generateKeyPair("RS256", { extractable: true });
  const rsaPublicKeyFile = path.join(dir, "jwt-rsa.pub.pem");
  await fs.writeFile(rsaPublicKeyFile, await exportSPKI(rsa.publicKey));
  const ec = await generateKeyPair("ES256", { extractable: true });
  const jwksFile = path.join(dir, "jwks.json");
  await fs.writeFile(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: "ec-1", use: "sig", alg: "ES256" }] }));
  return { secret, secretFile, rsa: rsa.privateKey, rsaPublicKeyFile, ec: ec.privateKey, jwksFile };
}

/** What a test token says; defaults make a valid token for AUDIENCE and ISSUER, valid for 10 minutes. */
export interface TokenClaims {
  readonly sub?: string;
  readonly scope?: string;
  readonly scp?: readonly string[];
  readonly roles?: readonly string[];
  readonly aud?: string;
  readonly iss?: string;
  /** Seconds from now; negative for an expired token. Default 600. */
  readonly expiresIn?: number;
  /** Leave `exp` out altogether. */
  readonly noExp?: boolean;
  readonly extra?: JWTPayload;
}

/** Signs a token with `key` (a secret for HS256, else a private key) and `alg`. */
export async function signToken(key: Uint8Array | CryptoKey | KeyObject, alg: string, claims: TokenClaims = {}, kid?: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = {
    ...(claims.scope === undefined ? {} : { scope: claims.scope }),
    ...(claims.scp === undefined ? {} : { scp: [...claims.scp] }),
    ...(claims.roles === undefined ? {} : { roles: [...claims.roles] }),
    ...claims.extra,
  };
  let jwt = new SignJWT(payload)
    .setProtectedHeader({ alg, typ: "JWT", ...(kid === undefined ? {} : { kid }) })
    .setIssuedAt(now)
    .setSubject(claims.sub ?? "alice")
    .setAudience(claims.aud ?? AUDIENCE)
    .setIssuer(claims.iss ?? ISSUER);
  if (claims.noExp !== true) jwt = jwt.setExpirationTime(now + (claims.expiresIn ?? 600));
  return jwt.sign(key);
}

/** An HS256 token from the test keys' secret. */
export function hs256(keys: TestKeys, claims: TokenClaims = {}): Promise<string> {
  return signToken(keys.secret, "HS256", claims);
}

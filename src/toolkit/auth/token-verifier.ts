import { createPublicKey, createSecretKey, type JsonWebKey, type KeyObject } from "node:crypto";
import fs from "node:fs/promises";
import { decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from "jose";
import type { Principal } from "../rpc/call-context.js";
import { Code } from "../rpc/code.js";
import { RpcError } from "../rpc/rpc-error.js";

/**
 * Where the keys that sign callers' bearer tokens (JWTs) come from, and which
 * claims a token must carry. At least one kind of key is needed.
 */
export interface TokenVerifierFiles {
  /** File holding the HS256 shared secret (≥ 32 bytes; a trailing newline is ignored). */
  readonly secretFile?: string;
  /** PEM files of RSA or EC public keys (or certificates): RS256/PS256, ES256/ES384/ES512. */
  readonly publicKeyFiles?: readonly string[];
  /** A JWKS file (`{"keys": [...]}`) of public keys, picked by the token's `kid`. */
  readonly jwksFile?: string;
  /** The `iss` every token must have. Default: not checked. */
  readonly issuer?: string;
  /** An `aud` every token must include. Default: not checked (the production profile requires one). */
  readonly audience?: string;
  /** Clock skew allowed on `exp` and `nbf`, in seconds. Default 30. */
  readonly clockToleranceSeconds?: number;
}

/** Verification keys already in memory (what the files hold). */
export interface TokenVerifierKeys {
  /** HS256 shared secret. */
  readonly secret?: Uint8Array;
  /** RSA/EC public keys, as PEM text or key objects. */
  readonly publicKeys?: readonly (string | KeyObject)[];
  /** A JSON Web Key Set. */
  readonly jwks?: unknown;
  readonly issuer?: string;
  readonly audience?: string;
  readonly clockToleranceSeconds?: number;
}

/** Checks bearer tokens. */
export interface TokenVerifier {
  /** The principal a valid token proves; rejects with an UNAUTHENTICATED RpcError saying what to fix. */
  verify(token: string): Promise<Principal>;
  /** What is accepted, for the startup log line: algorithms, issuer, audience. Never key material. */
  readonly description: string;
}

/** Shortest HS256 secret accepted: as long as the hash (RFC 7518 §3.2). */
const MIN_SECRET_BYTES = 32;
/** A JWT longer than this is refused unread (a real one is a few KiB at most). */
const MAX_TOKEN_CHARS = 8 * 1024;

/** One verification key and the algorithms it may verify. */
interface CandidateKey {
  readonly key: KeyObject;
  readonly algorithms: readonly string[];
  readonly kid: string | undefined;
}

/**
 * Reads the key files and returns a verifier. Errors name the file and the
 * problem, never the file's content.
 */
export async function loadTokenVerifier(files: TokenVerifierFiles): Promise<TokenVerifier> {
  const read = async (file: string, what: string): Promise<Buffer> => {
    try {
      return await fs.readFile(file);
    } catch (error) {
      throw new Error(`cannot read the ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
  };
  const secret = files.secretFile === undefined ? undefined : trimTrailingNewlines(await read(files.secretFile, "JWT secret file"));
  if (secret !== undefined && secret.length < MIN_SECRET_BYTES) {
    throw new Error(`the JWT secret in ${files.secretFile} is ${secret.length} bytes; HS256 needs at least ${MIN_SECRET_BYTES}`);
  }
  const publicKeys: KeyObject[] = [];
  for (const file of files.publicKeyFiles ?? []) {
    const pem = (await read(file, "JWT public key file")).toString("utf8");
    try {
      publicKeys.push(createPublicKey(pem));
    } catch {
      throw new Error(`the JWT public key file ${file} holds no PEM public key, certificate or private key`);
    }
  }
  let jwks: unknown;
  if (files.jwksFile !== undefined) {
    const text = (await read(files.jwksFile, "JWKS file")).toString("utf8");
    try {
      jwks = JSON.parse(text);
    } catch {
      throw new Error(`the JWKS file ${files.jwksFile} is not JSON`);
    }
  }
  try {
    return createTokenVerifier({
      ...(secret === undefined ? {} : { secret }),
      publicKeys,
      ...(jwks === undefined ? {} : { jwks }),
      ...(files.issuer === undefined ? {} : { issuer: files.issuer }),
      ...(files.audience === undefined ? {} : { audience: files.audience }),
      ...(files.clockToleranceSeconds === undefined ? {} : { clockToleranceSeconds: files.clockToleranceSeconds }),
    });
  } catch (error) {
    const where = files.jwksFile === undefined ? "" : ` (${files.jwksFile})`;
    throw new Error(`${(error as Error).message}${where}`);
  }
}

/**
 * A verifier for JWTs signed with the given keys (jose does the
 * cryptography). Each key verifies only the algorithms of its kind, so an
 * RSA public key can never be used as an HMAC secret, and `none` is never
 * accepted. A token must have `exp` and `sub`.
 */
export function createTokenVerifier(keys: TokenVerifierKeys): TokenVerifier {
  const candidates: CandidateKey[] = [];
  if (keys.secret !== undefined) {
    if (keys.secret.length < MIN_SECRET_BYTES) throw new Error(`the JWT secret is ${keys.secret.length} bytes; HS256 needs at least ${MIN_SECRET_BYTES}`);
    candidates.push({ key: createSecretKey(Buffer.from(keys.secret)), algorithms: ["HS256"], kid: undefined });
  }
  for (const publicKey of keys.publicKeys ?? []) {
    const key = typeof publicKey === "string" ? createPublicKey(publicKey) : publicKey;
    candidates.push({ key: asPublic(key), algorithms: algorithmsOf(asPublic(key)), kid: undefined });
  }
  if (keys.jwks !== undefined) candidates.push(...jwksCandidates(keys.jwks));
  if (candidates.length === 0) throw new Error("no JWT verification key: give a secret, a public key or a JWKS");

  const accepted = [...new Set(candidates.flatMap((candidate) => candidate.algorithms))];
  const options = {
    ...(keys.issuer === undefined ? {} : { issuer: keys.issuer }),
    ...(keys.audience === undefined ? {} : { audience: keys.audience }),
    clockTolerance: keys.clockToleranceSeconds ?? 30,
    requiredClaims: ["exp", "sub"],
  };

  return {
    description: [
      `algorithms ${accepted.join(", ")}`,
      ...(keys.issuer === undefined ? [] : [`issuer ${keys.issuer}`]),
      ...(keys.audience === undefined ? [] : [`audience ${keys.audience}`]),
    ].join("; "),
    async verify(token) {
      if (token.length > MAX_TOKEN_CHARS) throw unauthenticated("TOKEN_MALFORMED", `the bearer token is longer than ${MAX_TOKEN_CHARS} characters`);
      let alg: string | undefined;
      let kid: string | undefined;
      try {
        ({ alg, kid } = decodeProtectedHeader(token));
      } catch {
        throw unauthenticated("TOKEN_MALFORMED", "the bearer token is not a JWT (three base64url parts separated by dots)");
      }
      if (alg === undefined || !accepted.includes(alg)) {
        throw unauthenticated(
          "TOKEN_ALGORITHM_REJECTED",
          `the bearer token is signed with ${alg === undefined ? "no algorithm" : JSON.stringify(alg)}; this server accepts ${accepted.join(", ")}`,
        );
      }
      const byAlgorithm = candidates.filter((candidate) => candidate.algorithms.includes(alg));
      const byKid = kid === undefined ? [] : byAlgorithm.filter((candidate) => candidate.kid === kid);
      // A kid that names a key picks it; otherwise every key of the right kind is tried.
      const tried = byKid.length > 0 ? byKid : byAlgorithm;
      for (const candidate of tried) {
        let payload: JWTPayload;
        try {
          ({ payload } = await jwtVerify(token, candidate.key, { ...options, algorithms: [alg] }));
        } catch (error) {
          if (error instanceof errors.JWSSignatureVerificationFailed) continue;
          throw explain(error, keys);
        }
        return principalOf(payload);
      }
      throw unauthenticated(
        "TOKEN_SIGNATURE_INVALID",
        "the bearer token's signature does not verify with any key this server trusts: have it issued by the trusted issuer",
      );
    },
  };
}

/** The principal a token's claims describe: `sub`, `iss`, scopes from `scope` (space-separated) or `scp`, and `roles`. */
export function principalOf(payload: JWTPayload): Principal {
  const scopes = new Set([...words(payload["scope"]), ...words(payload["scp"])]);
  return {
    subject: payload.sub ?? "",
    ...(payload.iss === undefined ? {} : { issuer: payload.iss }),
    scopes: [...scopes],
    roles: [...new Set(words(payload["roles"]))],
  };
}

/** A claim as a list of words: a space-separated string, or an array of strings. */
function words(claim: unknown): string[] {
  if (typeof claim === "string") return claim.split(/\s+/).filter((word) => word !== "");
  if (Array.isArray(claim)) return claim.filter((item): item is string => typeof item === "string" && item !== "");
  return [];
}

function unauthenticated(reason: string, message: string, cause?: unknown): RpcError {
  return new RpcError(Code.UNAUTHENTICATED, message, { reason, ...(cause === undefined ? {} : { cause }) });
}

/** What a jose error means for the caller, in words that say what to fix (never the token itself). */
function explain(error: unknown, keys: TokenVerifierKeys): RpcError {
  if (error instanceof errors.JWTExpired) {
    const exp = typeof error.payload.exp === "number" ? ` at ${new Date(error.payload.exp * 1000).toISOString()}` : "";
    return unauthenticated("TOKEN_EXPIRED", `the bearer token expired${exp}: get a new one`, error);
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === "missing") {
      return unauthenticated("TOKEN_CLAIM_MISSING", `the bearer token has no "${error.claim}" claim, which this server requires`, error);
    }
    switch (error.claim) {
      case "aud":
        return unauthenticated(
          "TOKEN_AUDIENCE_MISMATCH",
          `the bearer token is not meant for this server: its "aud" must include ${JSON.stringify(keys.audience ?? "")}`,
          error,
        );
      case "iss":
        return unauthenticated(
          "TOKEN_ISSUER_MISMATCH",
          `the bearer token comes from another issuer: its "iss" must be ${JSON.stringify(keys.issuer ?? "")}`,
          error,
        );
      case "nbf":
        return unauthenticated("TOKEN_NOT_YET_VALID", 'the bearer token is not valid yet (its "nbf" is in the future)', error);
      default:
        return unauthenticated("TOKEN_CLAIM_INVALID", `the bearer token's "${error.claim}" claim is invalid (${error.reason})`, error);
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return unauthenticated("TOKEN_ALGORITHM_REJECTED", "the bearer token's algorithm or header is not supported by this server", error);
  }
  return unauthenticated("TOKEN_MALFORMED", "the bearer token is not a valid signed JWT", error);
}

/** Turns a private key given by mistake into its public key; public keys pass as they are. */
function asPublic(key: KeyObject): KeyObject {
  return key.type === "private" ? createPublicKey(key) : key;
}

/** The JWS algorithms a public key may verify, by its type and curve. */
function algorithmsOf(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
    case "rsa-pss":
      return ["PS256", "PS384", "PS512"];
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === "prime256v1") return ["ES256"];
      if (curve === "secp384r1") return ["ES384"];
      if (curve === "secp521r1") return ["ES512"];
      throw new Error(`unsupported EC curve ${curve ?? "(unknown)"} for JWT keys: use P-256, P-384 or P-521`);
    }
    case "ed25519":
      return ["EdDSA", "Ed25519"];
    default:
      throw new Error(`unsupported JWT key type ${key.asymmetricKeyType ?? "(unknown)"}: use RSA, EC or Ed25519`);
  }
}

/** The public keys of a JWKS meant for signatures, each with its kid and algorithms. */
function jwksCandidates(jwks: unknown): CandidateKey[] {
  if (typeof jwks !== "object" || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) {
    throw new Error('the JWKS is not a JSON Web Key Set ({"keys": [...]})');
  }
  const candidates: CandidateKey[] = [];
  for (const [index, jwk] of ((jwks as { keys: unknown[] }).keys).entries()) {
    if (typeof jwk !== "object" || jwk === null) throw new Error(`JWKS key #${index} is not an object`);
    const { kty, use, alg, kid, d } = jwk as { kty?: unknown; use?: unknown; alg?: unknown; kid?: unknown; d?: unknown };
    if (use !== undefined && use !== "sig") continue;
    if (kty === "oct") throw new Error(`JWKS key #${index} is a shared secret ("oct"): put secrets in the secret file, not a JWKS`);
    if (d !== undefined) throw new Error(`JWKS key #${index} is a private key: a JWKS for verification holds public keys only`);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
    } catch {
      throw new Error(`JWKS key #${index}${typeof kid === "string" ? ` (kid ${kid})` : ""} is not a valid public JWK`);
    }
    const algorithms = algorithmsOf(key);
    if (typeof alg === "string" && !algorithms.includes(alg)) {
      throw new Error(`JWKS key #${index} says alg ${alg}, which its key type cannot verify`);
    }
    candidates.push({ key, algorithms: typeof alg === "string" ? [alg] : algorithms, kid: typeof kid === "string" ? kid : undefined });
  }
  if (candidates.length === 0) throw new Error("the JWKS has no signature key");
  return candidates;
}

function trimTrailingNewlines(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
  return bytes.subarray(0, end);
}

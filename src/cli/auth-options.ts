import fs from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import type { Profile } from "../app/access-policy.js";
import type { TokenVerifierFiles } from "../toolkit/auth/token-verifier.js";

/** Auth, profile and limit flags of `serve`. */
export interface ServeAuthFlags {
  profile: Profile;
  jwtSecretFile?: string;
  jwtPublicKeyFile?: string[];
  jwksFile?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  maxDeadline: number;
  maxConcurrentStreams: number;
  maxMetadataSize: number;
  tlsCert?: string;
}

export const SERVE_AUTH_HELP = {
  profile: "development (default: easy local use) or production (requires TLS and JWT auth, no reflection)",
  jwtSecretFile: "require bearer tokens (JWT) signed with the HS256 secret in this file; enforces the access policy",
  jwtPublicKeyFile: "require bearer tokens signed with this PEM public key, RS256 or ES256 (repeatable)",
  jwksFile: "require bearer tokens signed with a key of this JWKS file (picked by kid)",
  jwtIssuer: 'the "iss" bearer tokens must have',
  jwtAudience: 'an "aud" bearer tokens must include (required by --profile production)',
  maxDeadline: "longest a call may run; later deadlines are shortened",
  maxConcurrentStreams: "calls one connection may have in flight; more wait (grpc-js engine)",
  maxMetadataSize: "largest request metadata in bytes; larger is RESOURCE_EXHAUSTED (grpc-js engine)",
} as const;

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Parses a positive whole number (a count or a size in bytes). */
export function parsePositiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n <= 0 || !Number.isSafeInteger(n)) throw new InvalidArgumentError("expected a positive whole number");
  return n;
}

/** The profile, auth and limit options of startSwitchyard from `serve`'s flags; exits with a usage error on a bad mix. */
export function serveAuthOf(
  flags: ServeAuthFlags,
  command: Command,
): {
  profile: Profile;
  auth?: TokenVerifierFiles;
  maxDeadlineMs: number;
  maxConcurrentStreams: number;
  maxMetadataBytes: number;
} {
  const keyGiven = flags.jwtSecretFile !== undefined || (flags.jwtPublicKeyFile ?? []).length > 0 || flags.jwksFile !== undefined;
  if (!keyGiven && (flags.jwtIssuer !== undefined || flags.jwtAudience !== undefined)) {
    command.error("error: --jwt-issuer and --jwt-audience check bearer tokens: give the key too (--jwt-secret-file, --jwt-public-key-file or --jwks-file)");
  }
  if (flags.profile === "production") {
    const missing = [
      ...(flags.tlsCert === undefined ? ["TLS (--tls-cert and --tls-key)"] : []),
      ...(keyGiven ? [] : ["bearer-token auth (--jwt-secret-file, --jwt-public-key-file or --jwks-file)"]),
      ...(flags.jwtAudience === undefined ? ["--jwt-audience"] : []),
    ];
    if (missing.length > 0) command.error(`error: --profile production needs ${missing.join(", ")}`);
  }
  for (const file of [flags.jwtSecretFile, ...(flags.jwtPublicKeyFile ?? []), flags.jwksFile]) {
    if (file !== undefined && !fs.existsSync(file)) command.error(`error: no such file: ${file}`);
  }
  return {
    profile: flags.profile,
    ...(keyGiven
      ? {
          auth: {
            ...(flags.jwtSecretFile === undefined ? {} : { secretFile: flags.jwtSecretFile }),
            ...(flags.jwtPublicKeyFile === undefined ? {} : { publicKeyFiles: flags.jwtPublicKeyFile }),
            ...(flags.jwksFile === undefined ? {} : { jwksFile: flags.jwksFile }),
            ...(flags.jwtIssuer === undefined ? {} : { issuer: flags.jwtIssuer }),
            ...(flags.jwtAudience === undefined ? {} : { audience: flags.jwtAudience }),
          },
        }
      : {}),
    maxDeadlineMs: flags.maxDeadline,
    maxConcurrentStreams: flags.maxConcurrentStreams,
    maxMetadataBytes: flags.maxMetadataSize,
  };
}

/** Token flags of `call`. */
export interface CallTokenFlags {
  token?: string;
  tokenFile?: string;
}

export const CALL_TOKEN_HELP = {
  token: "send this bearer token (JWT) as \"authorization: Bearer …\" (visible in the process list: prefer --token-file)",
  tokenFile: "send the bearer token (JWT) read from this file",
} as const;

/** The bearer token to send, from --token or --token-file; undefined for none. Exits with a usage error on a bad mix. */
export function callTokenOf(flags: CallTokenFlags, command: Command): string | undefined {
  if (flags.token !== undefined && flags.tokenFile !== undefined) command.error("error: give --token or --token-file, not both");
  let token = flags.token;
  if (flags.tokenFile !== undefined) {
    try {
      token = fs.readFileSync(flags.tokenFile, "utf8");
    } catch (error) {
      command.error(`error: cannot read --token-file ${flags.tokenFile}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
  }
  if (token === undefined) return undefined;
  token = token.trim();
  if (token === "" || /\s/.test(token)) command.error("error: the bearer token must be one word (a JWT), without spaces");
  return token;
}

import { deriveCallContext, type Principal } from "../rpc/call-context.js";
import { Code } from "../rpc/code.js";
import type { Metadata } from "../rpc/metadata.js";
import { RpcError } from "../rpc/rpc-error.js";
import { type ServerInterceptor, withContext } from "../server/server-interceptor.js";
import { type AccessPolicy, authorize, ruleFor } from "./access-policy.js";
import type { TokenVerifier } from "./token-verifier.js";

/** Options for authInterceptor. */
export interface AuthInterceptorOptions {
  /** Who may call what; methods without a rule are denied. */
  readonly policy: AccessPolicy;
  /** Checks bearer tokens. Without one, callers are known by their certificate identity only. */
  readonly verifier?: TokenVerifier;
}

/**
 * Authentication and authorization of every call through the dispatcher.
 * A bearer token (`authorization: Bearer <JWT>`) is verified when sent
 * (an invalid one is UNAUTHENTICATED even where the certificate alone would
 * do), its principal goes into the call context, and the policy decides with
 * it and the mTLS identity. Methods open to anyone skip verification.
 */
export function authInterceptor(options: AuthInterceptorOptions): ServerInterceptor {
  const { policy, verifier } = options;
  return async (call, next) => {
    const method = `${call.service}/${call.method}`;
    if (ruleFor(policy, method)?.kind === "anyone") return next();
    const token = bearerTokenOf(call.context.metadata);
    const principal: Principal | undefined = token !== undefined && verifier !== undefined ? await verifier.verify(token) : undefined;
    const decision = authorize(policy, method, { principal, peerIdentity: call.context.peerIdentity });
    if (!decision.allowed) throw decision.error;
    if (principal === undefined) return next();
    return next(withContext(call, deriveCallContext(call.context, { principal })));
  };
}

/**
 * The token of an `authorization: Bearer <token>` metadata entry; undefined
 * without one. A malformed header is UNAUTHENTICATED (the message does not
 * repeat it: it may hold a secret).
 */
export function bearerTokenOf(metadata: Metadata): string | undefined {
  const value = metadata["authorization"];
  if (value === undefined) return undefined;
  const match = typeof value === "string" ? /^Bearer +([^\s]+) *$/i.exec(value) : null;
  if (match === null) {
    throw new RpcError(Code.UNAUTHENTICATED, 'the "authorization" metadata must be "Bearer <JWT>"', { reason: "TOKEN_MALFORMED" });
  }
  return match[1];
}

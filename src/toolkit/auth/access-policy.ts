import type { Principal } from "../rpc/call-context.js";
import { Code } from "../rpc/code.js";
import { RpcError } from "../rpc/rpc-error.js";

/**
 * Who may call one method. A caller is any of two kinds of principal: the
 * bearer token's (subject, scopes, roles) and the mTLS certificate's identity.
 */
export type AccessRule =
  /** Anyone, even without credentials (health checks). */
  | { readonly kind: "anyone" }
  /** Any authenticated caller: a valid token or a verified client certificate. */
  | { readonly kind: "authenticated" }
  /** A caller holding one of these scopes or roles, or proving one of these identities. */
  | {
      readonly kind: "any-of";
      readonly scopes: readonly string[];
      readonly roles: readonly string[];
      readonly identities: readonly string[];
    };

/**
 * One rule per method, keyed by the method's full name as reflection lists it
 * (`service.UserService/GetUser`). A method without a rule is denied to
 * everyone: deny by default.
 */
export type AccessPolicy = Readonly<Record<string, AccessRule>>;

/** Rule constructors, for readable policies. */
export const allow = {
  anyone: (): AccessRule => ({ kind: "anyone" }),
  authenticated: (): AccessRule => ({ kind: "authenticated" }),
  anyOf: (grants: { readonly scopes?: readonly string[]; readonly roles?: readonly string[]; readonly identities?: readonly string[] }): AccessRule => ({
    kind: "any-of",
    scopes: grants.scopes ?? [],
    roles: grants.roles ?? [],
    identities: grants.identities ?? [],
  }),
} as const;

/** What the policy knows of a caller. */
export interface Caller {
  /** From a verified bearer token. */
  readonly principal?: Principal | undefined;
  /** From a verified client certificate (mTLS), or the in-process caller's identity. */
  readonly peerIdentity?: string | undefined;
}

/** The outcome of a check: allowed, or the error to answer with. */
export type Decision = { readonly allowed: true } | { readonly allowed: false; readonly error: RpcError };

const ALLOWED: Decision = { allowed: true };

/** The rule for a method (`service.UserService/GetUser`), or undefined when the policy has none. */
export function ruleFor(policy: AccessPolicy, method: string): AccessRule | undefined {
  return Object.prototype.hasOwnProperty.call(policy, method) ? policy[method] : undefined;
}

/**
 * Decides whether `caller` may call `method`: UNAUTHENTICATED when it must
 * prove who it is first, PERMISSION_DENIED when it did but lacks the grant
 * (or the method has no rule).
 */
export function authorize(policy: AccessPolicy, method: string, caller: Caller): Decision {
  const rule = ruleFor(policy, method);
  if (rule === undefined) {
    return deny(Code.PERMISSION_DENIED, "NO_ACCESS_RULE", `${method} is not open to any caller (no access rule: denied by default)`);
  }
  if (rule.kind === "anyone") return ALLOWED;
  const authenticated = caller.principal !== undefined || caller.peerIdentity !== undefined;
  if (rule.kind === "authenticated") {
    return authenticated ? ALLOWED : needsCredentials(method);
  }
  if (caller.peerIdentity !== undefined && rule.identities.includes(caller.peerIdentity)) return ALLOWED;
  const principal = caller.principal;
  if (principal !== undefined) {
    if (principal.scopes.some((scope) => rule.scopes.includes(scope))) return ALLOWED;
    if (principal.roles.some((role) => rule.roles.includes(role))) return ALLOWED;
  }
  if (!authenticated) return needsCredentials(method);
  return deny(Code.PERMISSION_DENIED, "MISSING_GRANT", `${method} needs ${describeGrants(rule)}; the caller has none of them`, {
    method,
  });
}

function needsCredentials(method: string): Decision {
  return deny(
    Code.UNAUTHENTICATED,
    "CREDENTIALS_MISSING",
    `${method} needs a caller who proves who it is: send the metadata "authorization: Bearer <JWT>"`,
    { method },
  );
}

function deny(code: Code, reason: string, message: string, metadata: Record<string, string> = {}): Decision {
  return { allowed: false, error: new RpcError(code, message, { reason, metadata }) };
}

/** `scope users:read, role admin or identity spiffe://…`, for denial messages. */
function describeGrants(rule: Extract<AccessRule, { kind: "any-of" }>): string {
  const grants = [
    ...rule.scopes.map((scope) => `scope ${scope}`),
    ...rule.roles.map((role) => `role ${role}`),
    ...rule.identities.map((identity) => `identity ${identity}`),
  ];
  if (grants.length === 0) return "a grant nobody has";
  if (grants.length === 1) return grants[0] as string;
  return `${grants.slice(0, -1).join(", ")} or ${grants[grants.length - 1] as string}`;
}

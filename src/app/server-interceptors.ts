import { authInterceptor } from "../toolkit/auth/auth-interceptor.js";
import type { TokenVerifier } from "../toolkit/auth/token-verifier.js";
import { loggingInterceptor } from "../toolkit/server/logging-interceptor.js";
import type { ServerInterceptor } from "../toolkit/server/server-interceptor.js";
import { switchyardAccessPolicy } from "./access-policy.js";
import type { SwitchyardOptions } from "./switchyard-options.js";

/** What serverInterceptors puts around the options' own interceptors. */
export interface ServerInterceptorWiring {
  /** Telemetry's server interceptors (tracing); empty when it is off. */
  readonly telemetry: readonly ServerInterceptor[];
  /** The load-shedding interceptor, made (and its limit checked) before anything opened. */
  readonly shedLoad: ServerInterceptor;
  /** Bearer-token verification; no auth interceptor without it. */
  readonly verifier: TokenVerifier | undefined;
}

/**
 * Every server interceptor, outermost first. The order is the point of this
 * module: tracing outermost, so that the call's log line carries its trace
 * id; then logging; then load shedding, before any work is done for the call
 * (a shed call is logged and counted all the same); then authentication and
 * the access policy; the options' own interceptors (tests' fault injection)
 * innermost, next to the handler.
 */
export function serverInterceptors(options: SwitchyardOptions, wiring: ServerInterceptorWiring): ServerInterceptor[] {
  return [
    ...wiring.telemetry,
    loggingInterceptor(options.logger),
    wiring.shedLoad,
    ...(wiring.verifier ? [authInterceptor({ policy: switchyardAccessPolicy(options.profile), verifier: wiring.verifier })] : []),
    ...(options.interceptors ?? []),
  ];
}

import type { ClientInterceptor } from "../client/create-client.js";
import { withMetadata } from "../client/create-client.js";

/**
 * Sends `authorization: Bearer <token>` with every call. `token` may be a
 * function, read per call, so that a refreshed token is picked up.
 */
export function bearerTokenInterceptor(token: string | (() => string)): ClientInterceptor {
  return (call, next) => {
    const value = typeof token === "function" ? token() : token;
    return next(withMetadata(call, { ...call.options.metadata, authorization: `Bearer ${value}` }));
  };
}

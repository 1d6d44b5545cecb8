import { type AccessPolicy, allow } from "../toolkit/auth/access-policy.js";

/** How strict a server is: `development` (the default) or `production`. */
export type Profile = "development" | "production";

/**
 * OrderService's identity: the URI SAN of its client certificate (mTLS) when
 * it calls UserService over the network, and the identity its in-process
 * calls carry when both services share a process.
 */
export const ORDER_SERVICE_IDENTITY = "spiffe://switchyard/order-service";

/** The role that may call every method of our services. */
export const ADMIN_ROLE = "admin";

/**
 * Who may call each method Switchyard serves, enforced when bearer-token
 * auth is configured. Every method the server answers has a rule here (a test
 * enumerates them through reflection); anything else is denied.
 *
 * - Bearer tokens grant scopes (`users:read`, `users:write`, `orders:read`,
 *   `orders:write`); the `admin` role may call every method of our services.
 * - OrderService's identity may call UserService.GetUser, which CreateOrder
 *   needs, and nothing more.
 * - Health is open to anyone: load balancers and orchestrators probe it
 *   without credentials.
 * - Reflection is open in development. In production it needs an
 *   authenticated caller; since both engines serve it outside the
 *   dispatcher's interceptors, the production profile turns it off instead
 *   (stricter than the rule).
 */
export function switchyardAccessPolicy(profile: Profile = "development"): AccessPolicy {
  const reflection = profile === "production" ? allow.authenticated() : allow.anyone();
  return {
    "service.UserService/GetUser": allow.anyOf({ scopes: ["users:read"], roles: [ADMIN_ROLE], identities: [ORDER_SERVICE_IDENTITY] }),
    "service.UserService/CreateUser": allow.anyOf({ scopes: ["users:write"], roles: [ADMIN_ROLE] }),
    "service.OrderService/CreateOrder": allow.anyOf({ scopes: ["orders:write"], roles: [ADMIN_ROLE] }),
    "service.OrderService/GetOrderByUser": allow.anyOf({ scopes: ["orders:read"], roles: [ADMIN_ROLE] }),
    "service.OrderService/ListOrdersByUser": allow.anyOf({ scopes: ["orders:read"], roles: [ADMIN_ROLE] }),
    "grpc.health.v1.Health/Check": allow.anyone(),
    "grpc.health.v1.Health/Watch": allow.anyone(),
    "grpc.health.v1.Health/List": allow.anyone(),
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo": reflection,
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": reflection,
  };
}

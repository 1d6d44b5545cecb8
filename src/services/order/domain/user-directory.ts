/** What OrderService needs to know about a user. */
export interface KnownUser {
  readonly id: string;
  readonly name: string;
}

/**
 * The request a use case serves, as the transport layer knows it (deadline,
 * cancellation, trace). The domain reads only whether it was given up, and
 * hands it on to the ports so that their work happens within it.
 */
export interface RequestScope {
  /** Why the request was given up (its caller cancelled, its deadline passed); undefined while it goes on. */
  readonly abortReason: unknown;
}

/**
 * OrderService's view of UserService (a port). The production adapter calls
 * UserService over gRPC, as part of `scope`; its failures other than "no
 * such user" propagate.
 */
export interface UserDirectory<Scope extends RequestScope> {
  /** The user, or undefined when UserService says it does not exist. */
  find(userId: string, scope: Scope): Promise<KnownUser | undefined>;
}

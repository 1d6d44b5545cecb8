/** What OrderService needs to know about a user. */
export interface KnownUser {
  readonly id: string;
  readonly name: string;
}

/**
 * OrderService's view of UserService (a port). The production adapter calls
 * UserService over gRPC; its failures other than "no such user" propagate.
 */
export interface UserDirectory {
  /** The user, or undefined when UserService says it does not exist. */
  find(userId: string): Promise<KnownUser | undefined>;
}

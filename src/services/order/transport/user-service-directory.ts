import type { UserServiceDefinition } from "../../../gen/service/v1/service.js";
import type { Client } from "../../../toolkit/client/create-client.js";
import { ClientError } from "../../../toolkit/rpc/client-error.js";
import { Code } from "../../../toolkit/rpc/code.js";
import type { UserDirectory } from "../domain/user-directory.js";

/**
 * OrderService's view of users, answered by UserService.GetUser through a client. NOT_FOUND
 * means "no such user"; every other failure propagates as the ClientError it
 * is, and the server edge translates it for OrderService's caller.
 */
export function createUserServiceDirectory(userService: Client<typeof UserServiceDefinition>): UserDirectory {
  return {
    async find(userId) {
      try {
        const user = await userService.getUser({ userId });
        return { id: userId, name: user.name };
      } catch (error) {
        if (error instanceof ClientError && error.code === Code.NOT_FOUND) return undefined;
        throw error;
      }
    },
  };
}

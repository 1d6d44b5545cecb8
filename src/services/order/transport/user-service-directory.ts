import type { UserServiceDefinition } from "../../../gen/service/v1/service.js";
import type { Client } from "../../../toolkit/client/create-client.js";
import type { CallContext } from "../../../toolkit/rpc/call-context.js";
import { ClientError } from "../../../toolkit/rpc/client-error.js";
import { Code } from "../../../toolkit/rpc/code.js";
import type { UserDirectory } from "../domain/user-directory.js";

/**
 * OrderService's view of users, answered by UserService.GetUser through a
 * client, as a child of the OrderService call it is asked for. NOT_FOUND
 * means "no such user"; every other failure propagates as the ClientError it
 * is, and the server edge translates it for OrderService's caller.
 */
export function createUserServiceDirectory(userService: Client<typeof UserServiceDefinition>): UserDirectory<CallContext> {
  return {
    async find(userId, parent) {
      try {
        const user = await userService.getUser({ userId }, { parent });
        return { id: userId, name: user.name };
      } catch (error) {
        if (error instanceof ClientError && error.code === Code.NOT_FOUND) return undefined;
        throw error;
      }
    },
  };
}

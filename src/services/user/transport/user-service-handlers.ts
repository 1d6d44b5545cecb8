import { UserServiceDefinition, type UserResponse } from "../../../gen/service/v1/service.js";
import { defineService, type ServiceRegistration } from "../../../toolkit/server/service-registration.js";
import { domainToRpc } from "../../common/domain-to-rpc.js";
import type { User } from "../domain/user.js";
import type { UserUseCases } from "../domain/user-use-cases.js";

/** UserService on the wire: proto messages in and out, domain in between. */
export function userServiceHandlers(users: UserUseCases): ServiceRegistration {
  return defineService(
    UserServiceDefinition,
    {
      // `.then`, not async functions: an async layer costs a suspended frame per call, and this is the hottest path.
      getUser: (request) => users.getUser(request.userId).then(toResponse),
      createUser: (request) => users.createUser({ id: request.userId, name: request.name, email: request.email }).then(toResponse),
    },
    { mapError: domainToRpc },
  );
}

function toResponse(user: User): UserResponse {
  return { name: user.name, email: user.email, userId: user.id };
}

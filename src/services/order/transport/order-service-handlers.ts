import { OrderServiceDefinition, type OrderResponse } from "../../../gen/service/v1/service.js";
import type { CallContext } from "../../../toolkit/rpc/call-context.js";
import { defineService, type ServiceRegistration } from "../../../toolkit/server/service-registration.js";
import { domainToRpc } from "../../common/domain-to-rpc.js";
import type { Order } from "../domain/order.js";
import type { OrderUseCases } from "../domain/order-use-cases.js";

/** OrderService on the wire: proto messages in and out, domain in between. */
export function orderServiceHandlers(orders: OrderUseCases<CallContext>): ServiceRegistration {
  return defineService(
    OrderServiceDefinition,
    {
      createOrder: async (request, context) =>
        toResponse(await orders.createOrder({ orderId: request.orderId, userId: request.userId }, context)),
      getOrderByUser: async (request, context) => toResponse(await orders.latestOrder(request.userId, context)),
      listOrdersByUser: async (request, context) => ({
        orders: (await orders.listOrders(request.userId, request.limit, context)).map(toResponse),
      }),
    },
    { mapError: domainToRpc },
  );
}

function toResponse(order: Order): OrderResponse {
  return { status: order.status, userId: order.userId, orderId: order.id };
}

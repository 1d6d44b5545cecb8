import { OrderServiceDefinition, type OrderResponse } from "../../../gen/service/v1/service.js";
import { defineService, type ServiceRegistration } from "../../../toolkit/server/service-registration.js";
import { mapDomainErrors } from "../../common/domain-to-rpc.js";
import type { Order } from "../domain/order.js";
import type { OrderUseCases } from "../domain/order-use-cases.js";

/** OrderService on the wire: proto messages in and out, domain in between. */
export function orderServiceHandlers(orders: OrderUseCases): ServiceRegistration {
  return defineService(
    OrderServiceDefinition,
    mapDomainErrors<typeof OrderServiceDefinition>({
      createOrder: async (request, context) =>
        toResponse(await orders.createOrder({ orderId: request.orderId, userId: request.userId }, context.signal)),
      getOrderByUser: async (request) => toResponse(await orders.latestOrder(request.userId)),
      listOrdersByUser: async (request) => ({
        orders: (await orders.listOrders(request.userId, request.limit)).map(toResponse),
      }),
    }),
  );
}

function toResponse(order: Order): OrderResponse {
  return { status: order.status, userId: order.userId, orderId: order.id };
}

/**
 * The shape of the service definitions that ts-proto emits with
 * `outputServices=generic-definitions`. Server and client are typed from these,
 * so handlers and callers see plain typed messages and never a transport type.
 */

import type { BinaryWriter } from "@bufbuild/protobuf/wire";

/** Encodes and decodes one message type (what ts-proto generates per message). */
export interface MessageCodec<T> {
  /** Encodes into `writer` (a new one by default); its `finish()` returns the bytes and resets it for reuse. */
  encode(message: T, writer?: BinaryWriter): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  fromJSON(json: unknown): T;
  toJSON(message: T): unknown;
}

/** One RPC of a service. */
export interface MethodDefinition<Req, Res> {
  readonly name: string;
  readonly requestType: MessageCodec<Req>;
  readonly responseType: MessageCodec<Res>;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly options: { readonly idempotencyLevel?: "NO_SIDE_EFFECTS" | "IDEMPOTENT" };
}

/** A service as generated: its full name and its methods keyed by camelCase name. */
export interface ServiceDefinition {
  readonly name: string;
  readonly fullName: string;
  readonly methods: { readonly [method: string]: MethodDefinition<unknown, unknown> };
}

/** The request type of a method definition. */
export type RequestOf<M> = M extends MethodDefinition<infer Req, unknown> ? Req : never;
/** The response type of a method definition. */
export type ResponseOf<M> = M extends MethodDefinition<unknown, infer Res> ? Res : never;

/** The HTTP/2 path of a method, e.g. `/service.UserService/GetUser`. */
export function methodPath(service: ServiceDefinition, method: MethodDefinition<unknown, unknown>): string {
  return `/${service.fullName}/${method.name}`;
}

/** True when the proto marks the method safe to send more than once. */
export function isIdempotent(method: MethodDefinition<unknown, unknown>): boolean {
  return method.options.idempotencyLevel !== undefined;
}

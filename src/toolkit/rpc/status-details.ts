import { Any } from "../../gen/google/protobuf/any.js";
import { BadRequest, ErrorInfo } from "../../gen/google/rpc/error_details.js";
import { Status } from "../../gen/google/rpc/status.js";
import type { Code } from "./code.js";
import { ERROR_DOMAIN, type FieldViolation, RpcError } from "./rpc-error.js";

/** The trailer that carries a binary google.rpc.Status (the gRPC rich error model). */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";

/** Encodes an error as google.rpc.Status with ErrorInfo and BadRequest details. */
export function encodeStatusDetails(error: RpcError): Uint8Array {
  const details: Any[] = [];
  if (error.reason !== undefined) {
    const info: ErrorInfo = { reason: error.reason, domain: ERROR_DOMAIN, metadata: { ...error.metadata } };
    details.push({ typeUrl: ERROR_INFO_TYPE, value: Buffer.from(ErrorInfo.encode(info).finish()) });
  }
  if (error.fieldViolations.length > 0) {
    const badRequest: BadRequest = { fieldViolations: error.fieldViolations.map((v) => ({ ...v })) };
    details.push({ typeUrl: BAD_REQUEST_TYPE, value: Buffer.from(BadRequest.encode(badRequest).finish()) });
  }
  return Status.encode({ code: error.code, message: error.message, details }).finish();
}

/** What a received google.rpc.Status said, in RpcError's terms. */
export interface DecodedStatusDetails {
  readonly reason?: string;
  readonly metadata?: Record<string, string>;
  readonly fieldViolations: FieldViolation[];
}

/**
 * Reads a google.rpc.Status trailer. Returns undefined when it is absent or
 * unreadable: details are a courtesy, and a bad trailer must not hide the code.
 */
export function decodeStatusDetails(bytes: Uint8Array, expectedCode: Code): DecodedStatusDetails | undefined {
  try {
    const status = Status.decode(bytes);
    if (status.code !== expectedCode) return undefined;
    const result: { reason?: string; metadata?: Record<string, string>; fieldViolations: FieldViolation[] } = {
      fieldViolations: [],
    };
    for (const detail of status.details) {
      if (detail.typeUrl === ERROR_INFO_TYPE) {
        const info = ErrorInfo.decode(detail.value);
        result.reason = info.reason;
        result.metadata = info.metadata;
      } else if (detail.typeUrl === BAD_REQUEST_TYPE) {
        result.fieldViolations.push(...BadRequest.decode(detail.value).fieldViolations);
      }
    }
    return result;
  } catch {
    return undefined;
  }
}

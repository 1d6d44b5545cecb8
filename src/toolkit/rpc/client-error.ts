import type { Code } from "./code.js";
import { RpcError, type RpcErrorOptions } from "./rpc-error.js";

/**
 * The error a caller receives from a remote method. It names the method, so
 * that a server which lets one escape can say which dependency failed instead
 * of passing the downstream's status to its own caller.
 */
export class ClientError extends RpcError {
  override readonly name: string = "ClientError";
  /** The method that failed, e.g. `/service.UserService/GetUser`. */
  readonly method: string;

  constructor(method: string, code: Code, message: string, options: RpcErrorOptions = {}) {
    super(code, message, options);
    this.method = method;
  }
}

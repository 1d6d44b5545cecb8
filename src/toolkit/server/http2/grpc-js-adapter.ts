import { EventEmitter, on } from "node:events";
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { Code, isCode } from "../../rpc/code.js";
import { MessageReader, ProtocolError } from "../../wire/message-reader.js";
import { formatPeer, frameMessage, MAX_TIMER_MS, parseGrpcTimeout } from "../../wire/protocol.js";
import { RESPONSE_HEADERS, sendTrailersOnly, statusHeaders, WITH_TRAILERS } from "./response.js";

/**
 * Lets services written for @grpc/grpc-js's `Server.addService` (our
 * grpc.health.v1 service, the reflection services of @grpc/reflection) run
 * on the node:http2 engine: it accepts their service
 * definitions and implementations and serves all four call kinds with
 * call objects that have the members those packages use (request, metadata,
 * cancelled, getPeer/getDeadline/getPath, sendMetadata, write, end, async
 * iteration over the requests, and the `data`, `end`, `drain`, `cancelled`,
 * `close` and `error` events). Hosted Switchyard
 * services do not come through here: they use the engine's own unary path.
 */
export class GrpcJsServiceHost implements Pick<grpc.Server, "addService"> {
  private readonly methods = new Map<string, AdaptedMethod>();
  /** Paths whose service is added on their first call, with the promise of adding it. */
  private readonly deferred = new Map<string, () => Promise<void>>();

  constructor(private readonly maxReceiveMessageBytes: number) {}

  addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    for (const [name, definition] of Object.entries(service)) {
      const handler = implementation[name] ?? (definition.originalName === undefined ? undefined : implementation[definition.originalName]);
      if (this.methods.has(definition.path)) throw new Error(`${definition.path} is already served`);
      // The cast narrows grpc-js's call types to the members AdaptedCall has;
      // the packages adapted here use no others.
      this.methods.set(definition.path, { definition, handler: handler as unknown as AdaptedHandler | undefined });
    }
  }

  /**
   * Serves `paths` from the service that `add` adds to this host, calling it
   * on the first call to any of them: a package that only a few callers use
   * (server reflection) is not loaded into every server at startup.
   */
  addOnFirstCall(paths: readonly string[], add: (host: this) => Promise<void>): void {
    let adding: Promise<void> | undefined;
    const addOnce = (): Promise<void> => (adding ??= add(this));
    for (const path of paths) this.deferred.set(path, addOnce);
  }

  /** Serves one call of an adapted method; false when `path` is not one. */
  start(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string): boolean {
    const method = this.methods.get(path);
    if (method === undefined) return this.startDeferred(stream, headers, path);
    const timeoutHeader = headers["grpc-timeout"];
    let timeoutMs: number | undefined;
    if (timeoutHeader !== undefined) {
      timeoutMs = parseGrpcTimeout(timeoutHeader as string);
      if (timeoutMs === undefined) {
        sendTrailersOnly(stream, statusHeaders(Code.INTERNAL, `malformed grpc-timeout "${String(timeoutHeader)}"`));
        return true;
      }
    }
    if (method.handler === undefined) {
      sendTrailersOnly(stream, statusHeaders(Code.UNIMPLEMENTED, `the server does not implement the method ${path}`));
      return true;
    }
    new AdaptedCall(stream, headers, path, method, this.maxReceiveMessageBytes, timeoutMs);
    return true;
  }

  /** Adds the service of a deferred path, then serves the call (its request waits in the stream). */
  private startDeferred(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string): boolean {
    const add = this.deferred.get(path);
    if (add === undefined) return false;
    add().then(
      () => {
        this.deferred.delete(path);
        if (stream.destroyed || this.start(stream, headers, path)) return;
        sendTrailersOnly(stream, statusHeaders(Code.INTERNAL, `adding the service of ${path} did not add it`));
      },
      (error: Error) => {
        if (!stream.destroyed) sendTrailersOnly(stream, statusHeaders(Code.INTERNAL, `the service of ${path} could not start: ${error.message}`));
      },
    );
    return true;
  }
}

/** What a grpc-js handler may pass as an error. */
interface AdaptedStatus {
  readonly code?: number;
  readonly details?: string;
  readonly message?: string;
  readonly metadata?: grpc.Metadata;
}

type WriteCallback = (error?: Error | null) => void;
type AdaptedCallback = (error: AdaptedStatus | null, value?: unknown, trailer?: grpc.Metadata) => void;
type AdaptedHandler = (call: AdaptedCall, callback: AdaptedCallback) => void;

interface AdaptedMethod {
  readonly definition: grpc.MethodDefinition<unknown, unknown>;
  readonly handler: AdaptedHandler | undefined;
}

/** Headers grpc-js leaves out of a call's metadata. */
const NOT_METADATA = ["grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "accept-encoding", "te", "content-type"];

/** A call as grpc-js service implementations see it, served on one HTTP/2 stream. */
export class AdaptedCall extends EventEmitter {
  /** The request, for unary and server-streaming methods. */
  request: unknown;
  /** True once the client cancelled or the deadline passed. */
  cancelled = false;
  private finished = false;
  private readonly reader: MessageReader;
  private readonly deadline: number;
  private timer: NodeJS.Timeout | undefined;
  private cachedMetadata: grpc.Metadata | undefined;
  private messages = 0;
  /**
   * Requests that arrived while the handler listened for none, and whether the
   * end came too: held until a `data` listener comes, as grpc-js's calls (Node
   * Readables, paused until read) hold them for a handler that reads late.
   */
  private readonly held: unknown[] = [];
  private endHeld = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly path: string,
    private readonly method: AdaptedMethod,
    maxReceiveMessageBytes: number,
    timeoutMs: number | undefined,
  ) {
    super();
    const { requestStream } = method.definition;
    this.deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) this.timer = setTimeout(() => this.expire(), timeoutMs);
    // emit("error", status) from a handler ends the call with that status, as in grpc-js.
    this.on("error", (error: AdaptedStatus) => this.sendStatus(error));
    this.on("newListener", (event: string | symbol) => {
      if (event === "data" && (this.held.length > 0 || this.endHeld)) process.nextTick(() => this.release());
    });
    this.reader = new MessageReader(maxReceiveMessageBytes, headers["grpc-encoding"] as string | undefined, (bytes) => this.message(bytes));
    stream.on("data", (chunk: Buffer) => {
      if (!this.finished && !this.reader.push(chunk)) this.protocolError(this.reader.error as ProtocolError);
    });
    stream.on("end", () => this.requestEnded());
    // A handler that waits for `drain` after write() returned false (as grpc-js's
    // writable calls invite) must hear it, or it waits forever.
    stream.on("drain", () => this.emit("drain"));
    stream.on("close", () => this.closed());
    stream.on("error", () => undefined);
    if (requestStream) this.invoke();
  }

  get metadata(): grpc.Metadata {
    if (this.cachedMetadata === undefined) {
      this.cachedMetadata = grpc.Metadata.fromHttp2Headers(this.headers);
      for (const key of NOT_METADATA) this.cachedMetadata.remove(key);
    }
    return this.cachedMetadata;
  }

  getPeer(): string {
    const socket = this.stream.session?.socket;
    return formatPeer(socket?.remoteAddress, socket?.remotePort);
  }

  getDeadline(): number {
    return this.deadline;
  }

  getPath(): string {
    return this.path;
  }

  getHost(): string {
    return String(this.headers[":authority"] ?? "");
  }

  /** The requests of a client-streaming or bidi call, for `for await`, as grpc-js's readable calls give them. */
  async *[Symbol.asyncIterator](): AsyncGenerator<unknown, void, undefined> {
    for await (const [request] of on(this, "data", { close: ["end", "cancelled"] })) yield request as unknown;
  }

  /** Delivers the held requests (and end) once the handler listens for them. */
  private release(): void {
    while (!this.finished && this.held.length > 0 && this.listenerCount("data") > 0) this.emit("data", this.held.shift());
    if (!this.finished && this.endHeld && this.held.length === 0 && this.listenerCount("data") > 0) {
      this.endHeld = false;
      this.emit("end");
    }
  }

  /** Sends the response headers with this metadata, ahead of the first message. */
  sendMetadata(metadata: grpc.Metadata): void {
    this.sendHeaders(metadata.toHttp2Headers());
  }

  /**
   * Sends one response message. As on grpc-js's writable calls (Node
   * Writables), a callback, after an optional encoding, is called once the
   * message is handed to the connection, or with an error when it cannot be.
   */
  write(message: unknown, encodingOrCallback?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    const done = typeof encodingOrCallback === "function" ? encodingOrCallback : callback;
    if (this.finished || this.stream.destroyed) {
      if (done !== undefined) process.nextTick(done, new Error("the call has ended"));
      return false;
    }
    let frame: Buffer;
    try {
      frame = frameMessage(this.method.definition.responseSerialize(message));
    } catch {
      this.sendStatus({ code: Code.INTERNAL, details: "could not serialize the response" });
      if (done !== undefined) process.nextTick(done, new Error("could not serialize the response"));
      return false;
    }
    this.sendHeaders();
    return done === undefined ? this.stream.write(frame) : this.stream.write(frame, done);
  }

  /** Ends the call with status OK (server-streaming and bidi methods). */
  end(trailer?: grpc.Metadata): void {
    this.sendStatus({ code: Code.OK, ...(trailer === undefined ? {} : { metadata: trailer }) });
  }

  private invoke(): void {
    const { handler, definition } = this.method;
    if (handler === undefined) return;
    try {
      if (definition.responseStream) {
        handler(this, () => undefined);
      } else {
        handler(this, (error, value, trailer) => {
          if (error !== null && error !== undefined) return this.sendStatus(error);
          this.write(value);
          this.sendStatus({ code: Code.OK, ...(trailer === undefined ? {} : { metadata: trailer }) });
        });
      }
    } catch {
      this.sendStatus({ code: Code.UNKNOWN, details: "the handler failed" });
    }
  }

  private message(bytes: Buffer): void {
    let request: unknown;
    try {
      request = this.method.definition.requestDeserialize(bytes);
    } catch {
      this.reject({ code: Code.INVALID_ARGUMENT, details: `the request body is not a valid ${this.path} request` });
      return;
    }
    this.messages++;
    if (this.method.definition.requestStream) {
      if (this.held.length === 0 && this.listenerCount("data") > 0) this.emit("data", request);
      else this.held.push(request);
    } else if (this.messages === 1) {
      this.request = request;
    }
  }

  private requestEnded(): void {
    if (this.finished) return;
    // node:http2 also ends the readable side when the client resets the
    // stream (RST_STREAM without END_STREAM, as grpc-go and the C core cancel):
    // that is a cancellation, not the end of the requests, and the handler
    // must not take what arrived so far for all of them.
    if (this.stream.closed) return this.cancel();
    if (!this.reader.end()) return this.protocolError(this.reader.error as ProtocolError);
    if (this.method.definition.requestStream) {
      if (this.held.length === 0 && this.listenerCount("data") > 0) this.emit("end");
      else this.endHeld = true;
      return;
    }
    if (this.messages !== 1) {
      this.sendStatus({ code: Code.INTERNAL, details: `a ${this.path} call takes exactly one request message; got ${this.messages}` });
      return;
    }
    this.invoke();
  }

  private protocolError(error: ProtocolError): void {
    this.reject({ code: error.code, details: error.message }, error.headers);
  }

  /**
   * The engine ends the call itself (a request it cannot accept): the status
   * to the client, and `cancelled` to a handler already running, as grpc-js
   * does, so that a streaming handler stops rather than waiting forever.
   */
  private reject(status: AdaptedStatus, extra?: OutgoingHttpHeaders): void {
    if (this.finished) return;
    this.sendStatus(status, extra);
    this.cancelled = true;
    this.emit("cancelled", "cancelled");
  }

  /** The stream closed: a cancellation unless the call had ended; `close` either way, as grpc-js's calls do. */
  private closed(): void {
    this.cancel();
    this.emit("close");
  }

  /** The client cancelled (or the connection went): tell the handler, once, unless the call had ended. */
  private cancel(): void {
    if (this.finished) return;
    this.finished = true;
    this.cancelled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.emit("cancelled", "cancelled");
  }

  private expire(): void {
    if (this.finished) return;
    this.sendStatus({ code: Code.DEADLINE_EXCEEDED, details: "deadline exceeded" });
    this.cancelled = true;
    this.emit("cancelled", "deadline");
  }

  private sendHeaders(extra?: OutgoingHttpHeaders): void {
    if (this.stream.headersSent || this.stream.destroyed) return;
    try {
      this.stream.respond(extra === undefined ? RESPONSE_HEADERS : { ...extra, ...RESPONSE_HEADERS }, WITH_TRAILERS);
    } catch {
      // The stream closed under us: the close handler reports the cancellation.
      this.stream.destroy();
    }
  }

  /** Ends the call with a status: in the trailers, or trailers-only when nothing was sent yet. */
  private sendStatus(status: AdaptedStatus, extra?: OutgoingHttpHeaders): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const code = isCode(status.code) ? status.code : Code.UNKNOWN;
    const trailers = statusHeaders(code, status.details ?? status.message ?? "", {
      ...status.metadata?.toHttp2Headers(),
      ...extra,
    });
    const stream = this.stream;
    if (stream.destroyed) return;
    if (!stream.headersSent) {
      sendTrailersOnly(stream, trailers);
      return;
    }
    // No RST_STREAM after the trailers, even when the client is still sending
    // (a bidi call the handler ended early): sent right behind sendTrailers it
    // overtakes them, and the client sees "RST_STREAM without a status"
    // (INTERNAL) instead of the handler's. The client closes its side once it
    // has the status; until then its messages are read and dropped.
    stream.once("wantTrailers", () => stream.sendTrailers(trailers));
    stream.end();
  }
}

"""UserService served by Python's gRPC (the C-core server, Debian's python3-grpcio), for our http2 client.

Usage: python3 python_server.py

Listens on a free port of 127.0.0.1 and prints "listening PORT". Raw method
handlers and hand-encoded protobuf (the helpers of python_client.py), so no
generated code is needed. GetUser behaves by user id, as the server of
support.ts does where the names match:
- missing: NOT_FOUND; unicode: FAILED_PRECONDITION with UNICODE_MESSAGE;
- metadata: the metadata received, as JSON in name (bytes as hex);
- deadline: the milliseconds left before the deadline in email;
- slow: waits until the call is cancelled, then prints {"event": "cancelled"};
- gzip: answers with a gzip-compressed message;
- big:N: a name of N bytes;
- flaky: UNAVAILABLE on the first call, then Ada; every call prints
  {"event": "flaky", "previous": grpc-previous-rpc-attempts};
- anything else: Ada.
Run by test/interop/http2-client.test.ts; stops on SIGTERM.
"""

import json
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

from python_client import UNICODE_MESSAGE, decode_fields, string_field


def user(user_id, name="Ada", email="ada@example.com"):
    return string_field(1, name) + string_field(2, email) + string_field(3, user_id)


def event(**fields):
    print(json.dumps(fields), flush=True)


flaky_calls = []


def get_user(request, context):
    user_id = decode_fields(request).get(1, "")
    metadata = {key: (value.hex() if isinstance(value, bytes) else value) for key, value in context.invocation_metadata()}
    if user_id == "missing":
        context.abort(grpc.StatusCode.NOT_FOUND, 'no user with id "missing"')
    if user_id == "unicode":
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, UNICODE_MESSAGE)
    if user_id == "metadata":
        return user(user_id, name=json.dumps(metadata), email="")
    if user_id == "deadline":
        return user(user_id, name="", email=str(int(context.time_remaining() * 1000)))
    if user_id == "slow":
        cancelled = threading.Event()
        context.add_callback(cancelled.set)
        cancelled.wait(10)
        event(event="cancelled" if not context.is_active() else "timeout")
        return user(user_id)
    if user_id == "gzip":
        context.set_compression(grpc.Compression.Gzip)
        return user(user_id)
    if user_id.startswith("big:"):
        return user(user_id, name="x" * int(user_id[4:]), email="")
    if user_id == "flaky":
        flaky_calls.append(1)
        event(event="flaky", previous=metadata.get("grpc-previous-rpc-attempts", "0"))
        if len(flaky_calls) == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "failing once on purpose")
    return user(user_id)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    handlers = {"GetUser": grpc.unary_unary_rpc_method_handler(get_user)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("service.UserService", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("listening %d" % port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())

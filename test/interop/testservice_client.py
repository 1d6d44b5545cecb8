"""The grpc.testing.TestService interop cases, run with Python's gRPC (the C-core client, Debian's python3-grpcio).

Usage: python3 testservice_client.py DESCRIPTOR_SET HOST:PORT

DESCRIPTOR_SET is a FileDescriptorSet of Debian's grpc-proto
grpc/testing/test.proto with its imports (test/interop/testservice.test.ts
writes it with `buf build`): Debian ships no grpc_tools, so the message classes
are built from descriptors at run time. Each case follows
doc/interop-test-descriptions.md of the gRPC repository. Prints one JSON line
per case: {"case", "ok", "detail"}; exits 1 when any case failed.
"""

import json
import queue
import sys
import traceback

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "/grpc.testing.TestService/"
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
INITIAL_VALUE = "test_initial_metadata_value"
TRAILING_VALUE = b"\xab\xab\xab"
CASE_HEADER = "x-switchyard-case"
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


def load_messages(path):
    files = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        files.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    names = [
        "Empty",
        "SimpleRequest",
        "SimpleResponse",
        "StreamingInputCallRequest",
        "StreamingInputCallResponse",
        "StreamingOutputCallRequest",
        "StreamingOutputCallResponse",
    ]
    get_class = getattr(message_factory, "GetMessageClass", None)
    factory = message_factory.MessageFactory(pool)
    classes = {}
    for name in names:
        descriptor = pool.FindMessageTypeByName("grpc.testing." + name)
        classes[name] = get_class(descriptor) if get_class is not None else factory.GetPrototype(descriptor)
    return classes


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Pipe:
    """A request iterator the case feeds one message at a time (for bidi calls)."""

    def __init__(self):
        self._queue = queue.Queue()

    def add(self, message):
        self._queue.put(message)

    def close(self):
        self._queue.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        message = self._queue.get()
        if message is None:
            raise StopIteration()
        return message


class Cases:
    def __init__(self, channel, messages):
        self.m = messages
        m = messages

        def unary(name, request, response, service=SERVICE):
            return channel.unary_unary(service + name, request_serializer=request.SerializeToString, response_deserializer=response.FromString)

        self.empty_call = unary("EmptyCall", m["Empty"], m["Empty"])
        self.unary_call = unary("UnaryCall", m["SimpleRequest"], m["SimpleResponse"])
        self.unimplemented_call = unary("UnimplementedCall", m["Empty"], m["Empty"])
        self.unimplemented_service_call = unary("UnimplementedCall", m["Empty"], m["Empty"], "/grpc.testing.UnimplementedService/")
        self.streaming_output_call = channel.unary_stream(
            SERVICE + "StreamingOutputCall",
            request_serializer=m["StreamingOutputCallRequest"].SerializeToString,
            response_deserializer=m["StreamingOutputCallResponse"].FromString,
        )
        self.streaming_input_call = channel.stream_unary(
            SERVICE + "StreamingInputCall",
            request_serializer=m["StreamingInputCallRequest"].SerializeToString,
            response_deserializer=m["StreamingInputCallResponse"].FromString,
        )
        self.full_duplex_call = channel.stream_stream(
            SERVICE + "FullDuplexCall",
            request_serializer=m["StreamingOutputCallRequest"].SerializeToString,
            response_deserializer=m["StreamingOutputCallResponse"].FromString,
        )
        self.half_duplex_call = channel.stream_stream(
            SERVICE + "HalfDuplexCall",
            request_serializer=m["StreamingOutputCallRequest"].SerializeToString,
            response_deserializer=m["StreamingOutputCallResponse"].FromString,
        )

    def payload(self, size):
        return {"type": 0, "body": b"\x00" * size}

    def simple_request(self, response_size, payload_size, **extra):
        return self.m["SimpleRequest"](response_type=0, response_size=response_size, payload=self.payload(payload_size), **extra)

    def streaming_request(self, sizes, payload_size=None, **extra):
        request = self.m["StreamingOutputCallRequest"](response_type=0, **extra)
        for size in sizes:
            request.response_parameters.add(size=size)
        if payload_size is not None:
            request.payload.body = b"\x00" * payload_size
        return request

    def check_payload(self, response, size):
        check(len(response.payload.body) == size, "payload of %d bytes, expected %d" % (len(response.payload.body), size))
        check(response.payload.body == b"\x00" * size, "payload is not all zeros")

    # The cases, in the order of doc/interop-test-descriptions.md.

    def empty_unary(self):
        response = self.empty_call(self.m["Empty"](), timeout=10)
        check(response.ByteSize() == 0, "a non-empty Empty")

    def large_unary(self):
        response = self.unary_call(self.simple_request(314159, 271828), timeout=10)
        self.check_payload(response, 314159)

    def client_compressed_unary(self):
        # The "probe" (expect_compressed on an uncompressed message, which a
        # server that checks answers INVALID_ARGUMENT) is left out: neither
        # engine tells a grpc-js-style handler whether a message arrived
        # compressed. Both calls must still arrive intact and be answered.
        for compressed in (True, False):
            request = self.simple_request(314159, 271828, expect_compressed={"value": compressed})
            response = self.unary_call(request, timeout=10, compression=grpc.Compression.Gzip if compressed else grpc.Compression.NoCompression)
            self.check_payload(response, 314159)

    def server_compressed_unary(self):
        for compressed in (True, False):
            request = self.simple_request(314159, 271828, response_compressed={"value": compressed})
            self.check_payload(self.unary_call(request, timeout=10), 314159)

    def client_streaming(self):
        sizes = [27182, 8, 1828, 45904]
        requests = [self.m["StreamingInputCallRequest"](payload=self.payload(size)) for size in sizes]
        response = self.streaming_input_call(iter(requests), timeout=10)
        check(response.aggregated_payload_size == 74922, "aggregated_payload_size %d" % response.aggregated_payload_size)

    def client_compressed_streaming(self):
        sizes = [27182, 45904]
        requests = [self.m["StreamingInputCallRequest"](payload=self.payload(size), expect_compressed={"value": True}) for size in sizes]
        response = self.streaming_input_call(iter(requests), timeout=10, compression=grpc.Compression.Gzip)
        check(response.aggregated_payload_size == 73086, "aggregated_payload_size %d" % response.aggregated_payload_size)

    def server_streaming(self):
        sizes = [31415, 9, 2653, 58979]
        responses = list(self.streaming_output_call(self.streaming_request(sizes), timeout=10))
        check(len(responses) == 4, "%d responses" % len(responses))
        for response, size in zip(responses, sizes):
            self.check_payload(response, size)

    def ping_pong(self):
        sizes = [31415, 9, 2653, 58979]
        payloads = [27182, 8, 1828, 45904]
        pipe = Pipe()
        responses = self.full_duplex_call(pipe, timeout=10)
        for size, payload in zip(sizes, payloads):
            pipe.add(self.streaming_request([size], payload))
            self.check_payload(next(responses), size)
        pipe.close()
        check(next(responses, None) is None, "a response after the last request")
        check(responses.code() == grpc.StatusCode.OK, "status %s" % responses.code())

    def empty_stream(self):
        responses = list(self.full_duplex_call(iter([]), timeout=10))
        check(responses == [], "%d responses" % len(responses))

    def half_duplex(self):
        sizes = [31415, 9, 2653]
        requests = [self.streaming_request([size], 8) for size in sizes]
        responses = list(self.half_duplex_call(iter(requests), timeout=10))
        check(len(responses) == 3, "%d responses" % len(responses))
        for response, size in zip(responses, sizes):
            self.check_payload(response, size)

    def custom_metadata(self):
        metadata = ((ECHO_INITIAL, INITIAL_VALUE), (ECHO_TRAILING, TRAILING_VALUE))

        def check_echo(call):
            initial = [v for k, v in call.initial_metadata() if k == ECHO_INITIAL]
            trailing = [v for k, v in call.trailing_metadata() if k == ECHO_TRAILING]
            check(initial == [INITIAL_VALUE], "initial metadata %r" % (call.initial_metadata(),))
            check(trailing == [TRAILING_VALUE], "trailing metadata %r" % (call.trailing_metadata(),))

        response, call = self.unary_call.with_call(self.simple_request(314159, 271828), metadata=metadata, timeout=10)
        self.check_payload(response, 314159)
        check_echo(call)
        responses = self.full_duplex_call(iter([self.streaming_request([314159], 271828)]), metadata=metadata, timeout=10)
        received = list(responses)
        check(len(received) == 1, "%d responses" % len(received))
        self.check_payload(received[0], 314159)
        check_echo(responses)

    def expect_status(self, call, code, message):
        try:
            call()
        except grpc.RpcError as error:
            check(error.code() == code, "status %s (%r), expected %s" % (error.code(), error.details(), code))
            if message is not None:
                check(error.details() == message, "message %r, expected %r" % (error.details(), message))
            return
        raise Failure("the call succeeded; expected %s" % code)

    def echo_status(self, message):
        status = {"code": 2, "message": message}
        self.expect_status(lambda: self.unary_call(self.m["SimpleRequest"](response_status=status), timeout=10), grpc.StatusCode.UNKNOWN, message)

        def duplex():
            # Read to the end: the status arrives after any responses.
            list(self.full_duplex_call(iter([self.streaming_request([], response_status=status)]), timeout=10))

        self.expect_status(duplex, grpc.StatusCode.UNKNOWN, message)

    def status_code_and_message(self):
        self.echo_status("test status message")

    def special_status_message(self):
        self.echo_status(SPECIAL_MESSAGE)

    def unimplemented_method(self):
        self.expect_status(lambda: self.unimplemented_call(self.m["Empty"](), timeout=10), grpc.StatusCode.UNIMPLEMENTED, None)

    def unimplemented_service(self):
        self.expect_status(lambda: self.unimplemented_service_call(self.m["Empty"](), timeout=10), grpc.StatusCode.UNIMPLEMENTED, None)

    def cancel_after_begin(self):
        pipe = Pipe()  # never sends anything
        future = self.streaming_input_call.future(pipe, timeout=10)
        future.cancel()
        check(future.cancelled(), "the call was not cancelled")
        check(future.code() == grpc.StatusCode.CANCELLED, "status %s" % future.code())
        pipe.close()

    def cancel_after_first_response(self):
        pipe = Pipe()
        # Names the call, so that the test can check the server's handler was told of the cancellation.
        responses = self.full_duplex_call(pipe, timeout=10, metadata=((CASE_HEADER, "cancel_after_first_response"),))
        pipe.add(self.streaming_request([31415], 27182))
        self.check_payload(next(responses), 31415)
        responses.cancel()
        try:
            next(responses)
        except grpc.RpcError as error:
            check(error.code() == grpc.StatusCode.CANCELLED, "status %s" % error.code())
        else:
            raise Failure("a response after the cancellation")
        finally:
            pipe.close()

    def early_status_bidi(self):
        # Not in the interop spec: the server ends a bidi call with a status
        # while the client is still sending, after a response larger than the
        # initial flow-control window. The status must arrive, not a reset.
        pipe = Pipe()
        responses = self.full_duplex_call(pipe, timeout=10)
        pipe.add(self.streaming_request([70000], 10))
        self.check_payload(next(responses), 70000)
        pipe.add(self.streaming_request([], response_status={"code": 10, "message": "stop here"}))
        try:
            next(responses)
        except grpc.RpcError as error:
            check(error.code() == grpc.StatusCode.ABORTED, "status %s (%r)" % (error.code(), error.details()))
            check(error.details() == "stop here", "message %r" % error.details())
        else:
            raise Failure("a response after the status")
        finally:
            pipe.close()

    def timeout_on_sleeping_server(self):
        pipe = Pipe()
        responses = self.full_duplex_call(pipe, timeout=0.001)
        pipe.add(self.streaming_request([], 27182))
        try:
            next(responses)
        except grpc.RpcError as error:
            check(error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, "status %s" % error.code())
        else:
            raise Failure("a response before the deadline")
        finally:
            pipe.close()


CASES = [
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "half_duplex",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
    "early_status_bidi",
]


def main():
    descriptor_set, address = sys.argv[1], sys.argv[2]
    messages = load_messages(descriptor_set)
    failed = False
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 8 << 20)]) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        cases = Cases(channel, messages)
        only = sys.argv[3:]
        for name in CASES:
            if only and name not in only:
                continue
            result = {"case": name, "ok": True, "detail": None}
            try:
                getattr(cases, name)()
            except Failure as failure:
                result = {"case": name, "ok": False, "detail": str(failure)}
            except Exception:  # noqa: BLE001 - every unexpected error is a failed case, with its trace
                result = {"case": name, "ok": False, "detail": traceback.format_exc(limit=3)}
            failed = failed or not result["ok"]
            print(json.dumps(result), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

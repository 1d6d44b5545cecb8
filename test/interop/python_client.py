"""Interop cases run with Python's gRPC (the C-core client, Debian's python3-grpcio).

Usage: python3 python_client.py HOST:PORT

Talks to the server of test/interop/support.ts with raw method handles
(channel.unary_unary) and hand-encoded protobuf, so no generated code is
needed. Prints one JSON line per case: {"case", "ok", "detail"}; exits 1 when
any case failed. Run by test/interop/python-client.test.ts.
"""

import json
import sys
import time

import grpc

UNICODE_MESSAGE = "naïve café: 100% ünïcödé ✓\nsecond line"


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string_field(number, text):
    data = text.encode("utf-8")
    return varint(number << 3 | 2) + varint(len(data)) + data


def decode_fields(data):
    """Decodes a message of length-delimited and varint fields into {number: value}."""
    fields = {}
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 2:
            length, pos = read_varint(data, pos)
            fields[number] = data[pos : pos + length].decode("utf-8")
            pos += length
        elif wire_type == 0:
            fields[number], pos = read_varint(data, pos)
        else:
            raise ValueError("unexpected wire type %d" % wire_type)
    return fields


def read_varint(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def user_request(user_id):
    return string_field(1, user_id)


def create_user_request(user_id, name, email):
    return string_field(1, user_id) + string_field(2, name) + string_field(3, email)


def user_response(data):
    fields = decode_fields(data)
    return {"name": fields.get(1, ""), "email": fields.get(2, ""), "userId": fields.get(3, "")}


def identity(data):
    return data


results = []


def case(name):
    def wrap(fn):
        try:
            detail = fn()
            results.append({"case": name, "ok": True, "detail": detail})
        except Exception as error:  # noqa: BLE001 - every failure is reported, not raised
            results.append({"case": name, "ok": False, "detail": "%s: %s" % (type(error).__name__, error)})
        return fn

    return wrap


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def main(address):
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=10)
    get_user = channel.unary_unary(
        "/service.UserService/GetUser", request_serializer=identity, response_deserializer=user_response
    )
    create_user = channel.unary_unary(
        "/service.UserService/CreateUser", request_serializer=identity, response_deserializer=user_response
    )

    @case("unary_ok")
    def _():
        response = get_user(user_request("u1"), timeout=10)
        expect(response == {"name": "Ada", "email": "ada@example.com", "userId": "u1"}, repr(response))
        return response

    @case("not_found_with_message")
    def _():
        try:
            get_user(user_request("missing"), timeout=10)
        except grpc.RpcError as error:
            expect(error.code() == grpc.StatusCode.NOT_FOUND, str(error.code()))
            expect(error.details() == 'no user with id "missing"', repr(error.details()))
            keys = [key for key, _ in (error.trailing_metadata() or ())]
            expect("grpc-status-details-bin" in keys, "no status details in %r" % keys)
            return error.details()
        raise AssertionError("the call succeeded")

    @case("percent_encoded_message")
    def _():
        try:
            get_user(user_request("unicode"), timeout=10)
        except grpc.RpcError as error:
            expect(error.code() == grpc.StatusCode.FAILED_PRECONDITION, str(error.code()))
            expect(error.details() == UNICODE_MESSAGE, repr(error.details()))
            return error.details()
        raise AssertionError("the call succeeded")

    @case("deadline_exceeded")
    def _():
        started = time.monotonic()
        try:
            get_user(user_request("slow-python-deadline"), timeout=0.5)
        except grpc.RpcError as error:
            expect(error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, str(error.code()))
            elapsed = time.monotonic() - started
            expect(elapsed < 5, "took %.2f s" % elapsed)
            return round(elapsed, 3)
        raise AssertionError("the call succeeded")

    @case("deadline_propagated")
    def _():
        left = int(get_user(user_request("deadline"), timeout=3)["email"])
        # C-core rounds the timeout it sends up a little.
        expect(2000 < left <= 3500, "deadline %d ms away" % left)
        return left

    @case("cancel")
    def _():
        future = get_user.future(user_request("slow-python-cancel"), timeout=30)
        time.sleep(0.5)
        future.cancel()
        expect(future.cancelled(), "not cancelled")
        return "cancelled"

    @case("metadata")
    def _():
        response = get_user(
            user_request("metadata"),
            timeout=10,
            metadata=(("x-text", "hello"), ("x-data-bin", b"\x00\x01\xfe\xff")),
        )
        seen = json.loads(response["name"])
        expect(seen.get("x-text") == "hello", repr(seen))
        expect(seen.get("x-data-bin") == "hex:0001feff", repr(seen))
        expect("grpc-timeout" not in seen and "te" not in seen and "content-type" not in seen, repr(seen))
        return seen.get("user-agent")

    @case("gzip_request")
    def _():
        name = "ab" * 100_000
        response = create_user(
            create_user_request("z", name, "z@example.com"), timeout=10, compression=grpc.Compression.Gzip
        )
        expect(response["name"] == "200000", repr(response["name"]))
        return response["name"]

    @case("gzip_channel")
    def _():
        compressed = grpc.insecure_channel(address, compression=grpc.Compression.Gzip)
        try:
            call = compressed.unary_unary(
                "/service.UserService/CreateUser", request_serializer=identity, response_deserializer=user_response
            )
            response = call(create_user_request("y", "c" * 50_000, ""), timeout=10)
            expect(response["name"] == "50000", repr(response))
            return response["name"]
        finally:
            compressed.close()

    @case("large_messages")
    def _():
        response = get_user(user_request("big:3000000"), timeout=20)
        expect(len(response["name"]) == 3_000_000, "got %d bytes" % len(response["name"]))
        response = create_user(create_user_request("l", "n" * 3_000_000, ""), timeout=20)
        expect(response["name"] == "3000000", repr(response["name"]))
        try:
            create_user(create_user_request("l", "n" * 5_000_000, ""), timeout=20)
        except grpc.RpcError as error:
            expect(error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, str(error.code()))
            return "ok"
        raise AssertionError("a 5 MB request was accepted")

    @case("unimplemented")
    def _():
        nope = channel.unary_unary("/service.UserService/Nope", request_serializer=identity, response_deserializer=identity)
        try:
            nope(b"", timeout=10)
        except grpc.RpcError as error:
            expect(error.code() == grpc.StatusCode.UNIMPLEMENTED, str(error.code()))
            return error.details()
        raise AssertionError("the call succeeded")

    @case("health_check")
    def _():
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=identity, response_deserializer=decode_fields)
        response = check(string_field(1, "service.UserService"), timeout=10)
        expect(response.get(1) == 1, "status %r" % response)  # 1 = SERVING
        return response

    @case("health_watch")
    def _():
        watch = channel.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=identity, response_deserializer=decode_fields)
        stream = watch(b"", timeout=10)
        first = next(stream)
        stream.cancel()
        expect(first.get(1) == 1, "status %r" % first)
        return first

    channel.close()
    for result in results:
        print(json.dumps(result))
    return 0 if all(result["ok"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

// Interop cases run with grpc-go (Debian's golang-google-grpc-dev), built
// offline from /usr/share/gocode by test/interop/go-client.test.ts.
//
// Usage: client HOST:PORT
//
// Talks to the server of test/interop/support.ts with hand-encoded protobuf
// through a pass-through codec, so no generated code for our protos is
// needed; health and reflection use grpc-go's own generated stubs. Prints one
// JSON line per case: {"case", "ok", "detail"}; exits 1 when any failed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang/protobuf/proto"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding/gzip"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
)

const unicodeMessage = "naïve café: 100% ünïcödé ✓\nsecond line"

// rawCodec sends and receives message bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func stringField(number int, text string) []byte {
	out := proto.EncodeVarint(uint64(number<<3 | 2))
	out = append(out, proto.EncodeVarint(uint64(len(text)))...)
	return append(out, text...)
}

// decodeStrings decodes a message of string fields into number → value.
func decodeStrings(data []byte) (map[int]string, error) {
	fields := map[int]string{}
	buffer := proto.NewBuffer(data)
	for {
		key, err := buffer.DecodeVarint()
		if err != nil {
			return fields, nil
		}
		if key&7 != 2 {
			return nil, fmt.Errorf("unexpected wire type %d", key&7)
		}
		value, err := buffer.DecodeStringBytes()
		if err != nil {
			return nil, err
		}
		fields[int(key>>3)] = value
	}
}

type result struct {
	Case   string      `json:"case"`
	Ok     bool        `json:"ok"`
	Detail interface{} `json:"detail"`
}

func main() {
	address := os.Args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	conn, err := grpc.DialContext(ctx, address, grpc.WithInsecure(), grpc.WithBlock(),
		// Fixed 65535-byte windows (grpc-go's defaults) turn BDP estimation off:
		// Debian's grpc-go 1.33 races when a BDP window update meets a stream
		// being opened (the new stream keeps the old limit while the server is
		// granted the new one) and fails that stream with "unexpected EOF".
		grpc.WithInitialWindowSize(65535), grpc.WithInitialConnWindowSize(65535),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(8<<20), grpc.MaxCallSendMsgSize(8<<20)))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(2)
	}
	defer conn.Close()

	call := func(ctx context.Context, method string, request []byte, options ...grpc.CallOption) (map[int]string, error) {
		var response []byte
		options = append(options, grpc.ForceCodec(rawCodec{}))
		if err := conn.Invoke(ctx, "/service.UserService/"+method, &request, &response, options...); err != nil {
			return nil, err
		}
		return decodeStrings(response)
	}
	withTimeout := func(d time.Duration) (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), d)
	}

	var results []result
	run := func(name string, fn func() (interface{}, error)) {
		detail, err := fn()
		if err != nil {
			results = append(results, result{name, false, err.Error()})
		} else {
			results = append(results, result{name, true, detail})
		}
	}
	expectCode := func(err error, code codes.Code) (*status.Status, error) {
		if err == nil {
			return nil, errors.New("the call succeeded")
		}
		s, _ := status.FromError(err)
		if s.Code() != code {
			return nil, fmt.Errorf("got %v %q, want %v", s.Code(), s.Message(), code)
		}
		return s, nil
	}

	run("unary_ok", func() (interface{}, error) {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		fields, err := call(ctx, "GetUser", stringField(1, "u1"))
		if err != nil {
			return nil, err
		}
		if fields[1] != "Ada" || fields[2] != "ada@example.com" || fields[3] != "u1" {
			return nil, fmt.Errorf("got %v", fields)
		}
		return fields, nil
	})

	run("not_found_with_details", func() (interface{}, error) {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		_, err := call(ctx, "GetUser", stringField(1, "missing"))
		s, err := expectCode(err, codes.NotFound)
		if err != nil {
			return nil, err
		}
		if s.Message() != `no user with id "missing"` {
			return nil, fmt.Errorf("message %q", s.Message())
		}
		for _, detail := range s.Details() {
			if info, ok := detail.(*errdetails.ErrorInfo); ok && info.Reason == "USER_NOT_FOUND" {
				return info.Reason, nil
			}
		}
		return nil, fmt.Errorf("no ErrorInfo in %v", s.Details())
	})

	run("percent_encoded_message", func() (interface{}, error) {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		_, err := call(ctx, "GetUser", stringField(1, "unicode"))
		s, err := expectCode(err, codes.FailedPrecondition)
		if err != nil {
			return nil, err
		}
		if s.Message() != unicodeMessage {
			return nil, fmt.Errorf("message %q", s.Message())
		}
		return s.Message(), nil
	})

	run("deadline_exceeded", func() (interface{}, error) {
		ctx, cancel := withTimeout(500 * time.Millisecond)
		defer cancel()
		started := time.Now()
		_, err := call(ctx, "GetUser", stringField(1, "slow-go-deadline"))
		if _, err := expectCode(err, codes.DeadlineExceeded); err != nil {
			return nil, err
		}
		return time.Since(started).Milliseconds(), nil
	})

	run("cancel", func() (interface{}, error) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, cancel)
		_, err := call(ctx, "GetUser", stringField(1, "slow-go-cancel"))
		if _, err := expectCode(err, codes.Canceled); err != nil {
			return nil, err
		}
		return "cancelled", nil
	})

	run("metadata", func() (interface{}, error) {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-text", "hello", "x-data-bin", string([]byte{0, 1, 0xfe, 0xff}))
		fields, err := call(ctx, "GetUser", stringField(1, "metadata"))
		if err != nil {
			return nil, err
		}
		seen := map[string]string{}
		if err := json.Unmarshal([]byte(fields[1]), &seen); err != nil {
			return nil, err
		}
		if seen["x-text"] != "hello" || seen["x-data-bin"] != "hex:0001feff" {
			return nil, fmt.Errorf("seen %v", seen)
		}
		if _, ok := seen["grpc-timeout"]; ok {
			return nil, fmt.Errorf("grpc-timeout exposed as metadata: %v", seen)
		}
		return seen["user-agent"], nil
	})

	run("gzip_request", func() (interface{}, error) {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		request := append(stringField(1, "z"), stringField(2, strings.Repeat("ab", 100000))...)
		fields, err := call(ctx, "CreateUser", request, grpc.UseCompressor(gzip.Name))
		if err != nil {
			return nil, err
		}
		if fields[1] != "200000" {
			return nil, fmt.Errorf("got %v", fields[1])
		}
		return fields[1], nil
	})

	run("large_messages", func() (interface{}, error) {
		ctx, cancel := withTimeout(20 * time.Second)
		defer cancel()
		fields, err := call(ctx, "GetUser", stringField(1, "big:3000000"))
		if err != nil {
			return nil, err
		}
		if len(fields[1]) != 3000000 {
			return nil, fmt.Errorf("got %d bytes", len(fields[1]))
		}
		fields, err = call(ctx, "CreateUser", append(stringField(1, "l"), stringField(2, strings.Repeat("n", 3000000))...))
		if err != nil {
			return nil, err
		}
		if fields[1] != "3000000" {
			return nil, fmt.Errorf("got %v", fields[1])
		}
		_, err = call(ctx, "CreateUser", append(stringField(1, "l"), stringField(2, strings.Repeat("n", 5000000))...))
		if _, err := expectCode(err, codes.ResourceExhausted); err != nil {
			return nil, err
		}
		return "ok", nil
	})

	run("unimplemented", func() (interface{}, error) {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		_, err := call(ctx, "Nope", nil)
		s, err := expectCode(err, codes.Unimplemented)
		if err != nil {
			return nil, err
		}
		return s.Message(), nil
	})

	run("health_check", func() (interface{}, error) {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		response, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "service.UserService"})
		if err != nil {
			return nil, err
		}
		if response.Status != healthpb.HealthCheckResponse_SERVING {
			return nil, fmt.Errorf("status %v", response.Status)
		}
		return response.Status.String(), nil
	})

	run("health_watch", func() (interface{}, error) {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: ""})
		if err != nil {
			return nil, err
		}
		response, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if response.Status != healthpb.HealthCheckResponse_SERVING {
			return nil, fmt.Errorf("status %v", response.Status)
		}
		return response.Status.String(), nil
	})

	run("reflection_v1alpha", func() (interface{}, error) {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, err
		}
		var names []string
		request := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"}}
		if err := stream.Send(request); err != nil {
			return nil, err
		}
		response, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		for _, service := range response.GetListServicesResponse().GetService() {
			names = append(names, service.Name)
		}
		symbol := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "service.UserService"}}
		if err := stream.Send(symbol); err != nil {
			return nil, err
		}
		response, err = stream.Recv()
		if err != nil {
			return nil, err
		}
		if len(response.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
			return nil, fmt.Errorf("no file descriptor for service.UserService: %v", response)
		}
		if err := stream.CloseSend(); err != nil {
			return nil, err
		}
		if len(names) != 1 || names[0] != "service.UserService" {
			return nil, fmt.Errorf("services %v", names)
		}
		return names, nil
	})

	failed := false
	for _, r := range results {
		line, _ := json.Marshal(r)
		fmt.Println(string(line))
		failed = failed || !r.Ok
	}
	if failed {
		os.Exit(1)
	}
}

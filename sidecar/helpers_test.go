package sidecar_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/sidecar"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// node is a runtime behind a sidecar gRPC server on 127.0.0.1, and a Go
// gRPC client of it.
type node struct {
	addr   string // the gRPC server's 127.0.0.1 address
	rt     *durable.Runtime
	client pb.TaskHubSidecarServiceClient
	stop   func()
}

// startNode opens a runtime in dir ("" for memory), lets register add its
// Go functions, attaches the sidecar, starts the runtime and serves it.
// t.Cleanup stops it unless the test called stop itself.
func startNode(t *testing.T, dir string, opts sidecar.Options, register func(rt *durable.Runtime)) *node {
	t.Helper()
	return startNodeWith(t, durable.Options{Dir: dir, Partitions: 2}, opts, register)
}

// startNodeWith is startNode with the runtime's options.
func startNodeWith(t *testing.T, ropts durable.Options, opts sidecar.Options, register func(rt *durable.Runtime)) *node {
	t.Helper()
	rt, err := durable.Open(ropts)
	if err != nil {
		t.Fatal(err)
	}
	if register != nil {
		register(rt)
	}
	g, s, err := sidecar.NewServer(rt, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { _ = g.Serve(ln); close(served) }()
	conn, err := grpc.Dial(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	n := &node{addr: ln.Addr().String(), rt: rt, client: pb.NewTaskHubSidecarServiceClient(conn)}
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = conn.Close()
		s.Close()
		g.GracefulStop()
		<-served
		if err := rt.Close(); err != nil {
			t.Errorf("close runtime: %v", err)
		}
	}
	t.Cleanup(n.stop)
	return n
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails the test unless err is a gRPC status with code.
func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("got code %s (%v), want %s", got, err, code)
	}
}

// sidecarOpts are the options of most tests: a quick health ping.
func sidecarOpts() sidecar.Options {
	return sidecar.Options{PingInterval: 50 * time.Millisecond}
}

package main

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	pb "github.com/durable-go/durable/sidecar/protos"
)

// TestServeGRPCRunsTheSampleAppOverTheSidecarProtocol: durable serve
// --grpc answers the Durable Task protocol, here from a Go gRPC client
// starting the sample app's HelloCities.
func TestServeGRPCRunsTheSampleAppOverTheSidecarProtocol(t *testing.T) {
	logs := &lockedBuffer{}
	listening := make(chan string, 1)
	c := &cli{stdout: io.Discard, stderr: logs, getenv: func(string) string { return "" }, onGRPCListen: func(a string) { listening <- a }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- c.run(ctx, []string{"serve", "--memory", "--addr", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--log-level", "warn"})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, logs.String())
		}
	}()
	var addr string
	select {
	case addr = <-listening:
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewTaskHubSidecarServiceClient(conn)
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	if _, err := client.Hello(rctx, &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	started, err := client.StartInstance(rctx, &pb.CreateInstanceRequest{Name: "HelloCities"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := client.WaitForInstanceCompletion(rctx, &pb.GetInstanceRequest{InstanceId: started.GetInstanceId(), GetInputsAndOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetOrchestrationState().GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || st.GetOrchestrationState().GetOutput() == nil {
		t.Fatalf("state %v", st)
	}
}

func TestServeRefusesABadGRPCAddress(t *testing.T) {
	c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	if code := c.run(context.Background(), []string{"serve", "--memory", "--addr", "127.0.0.1:0", "--grpc", "not-an-address", "--log-level", "warn"}); code == 0 {
		t.Fatal("serve ran with --grpc not-an-address")
	}
}

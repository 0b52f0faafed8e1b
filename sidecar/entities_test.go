package sidecar_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	pb "github.com/durable-go/durable/sidecar/protos"
)

func counterApp(rt *durable.Runtime) {
	_ = rt.RegisterEntity("Counter", func(ctx *orchestration.EntityContext) error {
		var n int
		_ = ctx.GetState(&n)
		var by int
		if err := ctx.Input(&by); err != nil {
			return err
		}
		ctx.SetState(n + by)
		return nil
	})
}

func TestEntitiesAreSignalledReadAndQueriedOverGRPC(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), counterApp)
	ctx := testCtx(t)
	for _, key := range []string{"a", "b"} {
		if _, err := n.client.SignalEntity(ctx, &pb.SignalEntityRequest{InstanceId: "@counter@" + key, Name: "add", Input: str(`5`), RequestId: "r-" + key}); err != nil {
			t.Fatal(err)
		}
	}
	var got *pb.GetEntityResponse
	for deadline := time.Now().Add(20 * time.Second); ; {
		var err error
		got, err = n.client.GetEntity(ctx, &pb.GetEntityRequest{InstanceId: "@counter@a", IncludeState: true})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetExists() || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got.GetEntity().GetSerializedState().GetValue() != "5" {
		t.Fatalf("entity %v", got)
	}
	missing, err := n.client.GetEntity(ctx, &pb.GetEntityRequest{InstanceId: "@counter@nobody"})
	if err != nil || missing.GetExists() {
		t.Fatalf("missing entity: %v %v", missing, err)
	}
	var listed []string
	for deadline := time.Now().Add(20 * time.Second); len(listed) < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		q, err := n.client.QueryEntities(ctx, &pb.QueryEntitiesRequest{Query: &pb.EntityQuery{InstanceIdStartsWith: str("@counter@"), IncludeState: true, PageSize: wrapperspb.Int32(10)}})
		if err != nil {
			t.Fatal(err)
		}
		listed = listed[:0]
		for _, e := range q.GetEntities() {
			listed = append(listed, e.GetInstanceId())
		}
	}
	if len(listed) != 2 || listed[0] != "@counter@a" || listed[1] != "@counter@b" {
		t.Fatalf("listed %v", listed)
	}
	for name, call := range map[string]func() error{
		"a malformed entity id": func() error {
			_, err := n.client.SignalEntity(ctx, &pb.SignalEntityRequest{InstanceId: "counter", Name: "add"})
			return err
		},
		"an unregistered entity": func() error {
			_, err := n.client.SignalEntity(ctx, &pb.SignalEntityRequest{InstanceId: "@nobody@x", Name: "add"})
			return err
		},
		"no operation": func() error {
			_, err := n.client.SignalEntity(ctx, &pb.SignalEntityRequest{InstanceId: "@counter@a"})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, call(), codes.InvalidArgument) })
	}
	_, err = n.client.SignalEntity(ctx, &pb.SignalEntityRequest{InstanceId: "@counter@a", Name: "add", ScheduledTime: timestamppb.New(time.Now().Add(time.Hour))})
	wantCode(t, err, codes.Unimplemented)
	_, err = n.client.CompleteEntityTask(ctx, &pb.EntityBatchResult{})
	wantCode(t, err, codes.InvalidArgument) // no completion token
}

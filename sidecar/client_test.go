package sidecar_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// goApp registers Go orchestrators the client tests drive over gRPC.
func goApp(rt *durable.Runtime) {
	_ = rt.RegisterActivity("Hello", func(_ context.Context, city string) (string, error) {
		if city == "" {
			return "", errors.New("no city")
		}
		return "Hello " + city + "!", nil
	})
	_ = rt.RegisterOrchestrator("HelloCities", func(ctx *orchestration.Context) (any, error) {
		var out []string
		for _, c := range []string{"Tokyo", "Seattle"} {
			s, err := orchestration.Await[string](ctx.CallActivity("Hello", c))
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	})
	_ = rt.RegisterOrchestrator("Greet", func(ctx *orchestration.Context) (any, error) {
		var city string
		if err := ctx.Input(&city); err != nil {
			return nil, err
		}
		return orchestration.Await[string](ctx.CallActivity("Hello", city))
	})
	_ = rt.RegisterOrchestrator("WaitForApproval", func(ctx *orchestration.Context) (any, error) {
		return orchestration.Await[string](ctx.WaitForExternalEvent("Approval"))
	})
}

func str(s string) *wrapperspb.StringValue { return wrapperspb.String(s) }

func TestHelloAnswers(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), nil)
	if _, err := n.client.Hello(testCtx(t), &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
}

func TestStartedGoOrchestrationCompletesWithItsOutputOverGRPC(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	ctx := testCtx(t)
	started, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "hello-1", Name: "HelloCities"})
	if err != nil {
		t.Fatal(err)
	}
	if started.GetInstanceId() != "hello-1" {
		t.Fatalf("instance id %q", started.GetInstanceId())
	}
	if _, err := n.client.WaitForInstanceStart(ctx, &pb.GetInstanceRequest{InstanceId: "hello-1"}); err != nil {
		t.Fatal(err)
	}
	done, err := n.client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "hello-1", GetInputsAndOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	st := done.GetOrchestrationState()
	if !done.GetExists() || st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED {
		t.Fatalf("state %v", done)
	}
	if got := st.GetOutput().GetValue(); got != `["Hello Tokyo!","Hello Seattle!"]` {
		t.Fatalf("output %s", got)
	}
	if st.GetName() != "HelloCities" || st.GetCreatedTimestamp() == nil || st.GetCompletedTimestamp() == nil {
		t.Fatalf("state %v", st)
	}
	// Without payloads, the same state has no output.
	got, err := n.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "hello-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetOrchestrationState().GetOutput() != nil || got.GetOrchestrationState().GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED {
		t.Fatalf("state without payloads %v", got)
	}
}

func TestMissingInstanceAnswersExistsFalse(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	ctx := testCtx(t)
	for name, call := range map[string]func(context.Context, *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error){
		"GetInstance": func(ctx context.Context, r *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
			return n.client.GetInstance(ctx, r)
		},
		"WaitForInstanceStart": func(ctx context.Context, r *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
			return n.client.WaitForInstanceStart(ctx, r)
		},
		"WaitForInstanceCompletion": func(ctx context.Context, r *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
			return n.client.WaitForInstanceCompletion(ctx, r)
		},
	} {
		resp, err := call(ctx, &pb.GetInstanceRequest{InstanceId: "nobody"})
		if err != nil || resp.GetExists() {
			t.Errorf("%s: %v, %v; want exists=false", name, resp, err)
		}
	}
}

// TestHistoryMapsOntoTheProtocolsEvents checks the mapping the SDKs rely
// on: the kinds in order, a task's eventId named by its completion, names,
// payloads and timestamps.
func TestHistoryMapsOntoTheProtocolsEvents(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	ctx := testCtx(t)
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "greet-1", Name: "Greet", Input: str(`"Oslo"`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "greet-1"}); err != nil {
		t.Fatal(err)
	}
	events := streamHistory(t, n, "greet-1")
	var kinds []string
	var scheduledID int32 = -2
	for _, ev := range events {
		if ev.GetTimestamp() == nil {
			t.Errorf("event %v has no timestamp", ev)
		}
		switch e := ev.GetEventType().(type) {
		case *pb.HistoryEvent_ExecutionStarted:
			kinds = append(kinds, "ExecutionStarted")
			if e.ExecutionStarted.GetName() != "Greet" || e.ExecutionStarted.GetInput().GetValue() != `"Oslo"` ||
				e.ExecutionStarted.GetOrchestrationInstance().GetInstanceId() != "greet-1" {
				t.Errorf("started %v", e)
			}
		case *pb.HistoryEvent_OrchestratorStarted:
			kinds = append(kinds, "OrchestratorStarted")
		case *pb.HistoryEvent_TaskScheduled:
			kinds = append(kinds, "TaskScheduled")
			scheduledID = ev.GetEventId()
			if e.TaskScheduled.GetName() != "Hello" || e.TaskScheduled.GetInput().GetValue() != `"Oslo"` {
				t.Errorf("scheduled %v", e)
			}
		case *pb.HistoryEvent_TaskCompleted:
			kinds = append(kinds, "TaskCompleted")
			if e.TaskCompleted.GetTaskScheduledId() != scheduledID || e.TaskCompleted.GetResult().GetValue() != `"Hello Oslo!"` {
				t.Errorf("completed %v, scheduled id %d", e, scheduledID)
			}
			if ev.GetEventId() != -1 {
				t.Errorf("a completion's eventId is %d, want -1", ev.GetEventId())
			}
		case *pb.HistoryEvent_ExecutionCompleted:
			kinds = append(kinds, "ExecutionCompleted")
			if e.ExecutionCompleted.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED ||
				e.ExecutionCompleted.GetResult().GetValue() != `"Hello Oslo!"` {
				t.Errorf("execution completed %v", e)
			}
		default:
			kinds = append(kinds, "other")
		}
	}
	want := []string{"OrchestratorStarted", "ExecutionStarted", "TaskScheduled", "OrchestratorStarted", "TaskCompleted", "ExecutionCompleted"}
	if !equal(kinds, want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	if scheduledID < 0 {
		t.Fatalf("TaskScheduled eventId %d", scheduledID)
	}
}

func streamHistory(t *testing.T, n *node, id string) []*pb.HistoryEvent {
	t.Helper()
	stream, err := n.client.StreamInstanceHistory(testCtx(t), &pb.StreamInstanceHistoryRequest{InstanceId: id})
	if err != nil {
		t.Fatal(err)
	}
	var events []*pb.HistoryEvent
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			return events
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, chunk.GetEvents()...)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFailedInstanceCarriesItsFailureChainAndRewinds(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	ctx := testCtx(t)
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "greet-bad", Name: "Greet", Input: str(`""`)}); err != nil {
		t.Fatal(err)
	}
	done, err := n.client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "greet-bad"})
	if err != nil {
		t.Fatal(err)
	}
	st := done.GetOrchestrationState()
	if st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED {
		t.Fatalf("status %v", st.GetOrchestrationStatus())
	}
	f := st.GetFailureDetails()
	if f.GetErrorType() == "" || f.GetErrorMessage() == "" || f.GetInnerFailure().GetErrorMessage() != "no city" {
		t.Fatalf("failure %v", f)
	}
	// Rewinding re-runs the failed activity, which fails again the same way.
	if _, err := n.client.RewindInstance(ctx, &pb.RewindInstanceRequest{InstanceId: "greet-bad", Reason: str(`"retry"`)}); err != nil {
		t.Fatal(err)
	}
	// A completed instance cannot be rewound.
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "greet-ok", Name: "Greet", Input: str(`"Rome"`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "greet-ok"}); err != nil {
		t.Fatal(err)
	}
	_, err = n.client.RewindInstance(ctx, &pb.RewindInstanceRequest{InstanceId: "greet-ok"})
	wantCode(t, err, codes.FailedPrecondition)
}

func TestEventsSuspendResumeTerminateAndRestart(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	ctx := testCtx(t)
	start := func(id string) {
		t.Helper()
		if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: id, Name: "WaitForApproval"}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.WaitForInstanceStart(ctx, &pb.GetInstanceRequest{InstanceId: id}); err != nil {
			t.Fatal(err)
		}
	}
	statusOf := func(id string) pb.OrchestrationStatus {
		t.Helper()
		r, err := n.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: id})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetOrchestrationState().GetOrchestrationStatus()
	}

	start("approve-1")
	if _, err := n.client.SuspendInstance(ctx, &pb.SuspendRequest{InstanceId: "approve-1", Reason: str(`"hold"`)}); err != nil {
		t.Fatal(err)
	}
	if got := statusOf("approve-1"); got != pb.OrchestrationStatus_ORCHESTRATION_STATUS_SUSPENDED {
		t.Fatalf("after suspend: %v", got)
	}
	if _, err := n.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "approve-1", Name: "Approval", Input: str(`"yes"`)}); err != nil {
		t.Fatal(err)
	}
	if got := statusOf("approve-1"); got != pb.OrchestrationStatus_ORCHESTRATION_STATUS_SUSPENDED {
		t.Fatalf("a suspended instance took its event: %v", got)
	}
	if _, err := n.client.ResumeInstance(ctx, &pb.ResumeRequest{InstanceId: "approve-1"}); err != nil {
		t.Fatal(err)
	}
	done, err := n.client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "approve-1", GetInputsAndOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := done.GetOrchestrationState().GetOutput().GetValue(); got != `"yes"` {
		t.Fatalf("output %s", got)
	}

	start("approve-2")
	if _, err := n.client.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: "approve-2", Output: str(`"no longer needed"`)}); err != nil {
		t.Fatal(err)
	}
	done, err = n.client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "approve-2", GetInputsAndOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := done.GetOrchestrationState(); st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED || st.GetOutput().GetValue() != `"no longer needed"` {
		t.Fatalf("terminated state %v", st)
	}
	var sawTerminated bool
	for _, ev := range streamHistory(t, n, "approve-2") {
		if e := ev.GetExecutionTerminated(); e != nil {
			sawTerminated = e.GetInput().GetValue() == `"no longer needed"`
		}
	}
	if !sawTerminated {
		t.Fatal("history has no ExecutionTerminated with the reason")
	}
	_, err = n.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "approve-2", Name: "Approval"})
	wantCode(t, err, codes.FailedPrecondition)

	restarted, err := n.client.RestartInstance(ctx, &pb.RestartInstanceRequest{InstanceId: "approve-2", RestartWithNewInstanceId: true})
	if err != nil {
		t.Fatal(err)
	}
	if id := restarted.GetInstanceId(); id == "approve-2" || id == "" {
		t.Fatalf("restart under a new id gave %q", id)
	}
	if got := statusOf(restarted.GetInstanceId()); got == pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED {
		t.Fatalf("restarted instance is %v", got)
	}
}

func TestQueryListAndPurge(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	ctx := testCtx(t)
	for _, id := range []string{"q-1", "q-2", "q-3"} {
		if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: id, Name: "Greet", Input: str(`"Lima"`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "q-wait", Name: "WaitForApproval"}); err != nil {
		t.Fatal(err)
	}

	// Two pages of two, the second continuing the first.
	var ids []string
	var token *wrapperspb.StringValue
	for page := 0; ; page++ {
		resp, err := n.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{
			MaxInstanceCount: 2, ContinuationToken: token, InstanceIdPrefix: str("q-"), FetchInputsAndOutputs: true,
		}})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range resp.GetOrchestrationState() {
			ids = append(ids, st.GetInstanceId())
		}
		if token = resp.GetContinuationToken(); token == nil {
			break
		}
		if page > 3 {
			t.Fatal("the listing does not end")
		}
	}
	if len(ids) != 4 {
		t.Fatalf("listed %v", ids)
	}
	completed, err := n.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{
		RuntimeStatus: []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(completed.GetOrchestrationState()) != 3 {
		t.Fatalf("completed: %v", completed.GetOrchestrationState())
	}
	listed, err := n.client.ListInstanceIds(ctx, &pb.ListInstanceIdsRequest{
		RuntimeStatus: []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := listed.GetInstanceIds(); len(got) != 1 || got[0] != "q-wait" {
		t.Fatalf("running ids %v", got)
	}

	// Purge one, a running one (refused), a missing one (zero), then by filter.
	purged, err := n.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "q-1"}})
	if err != nil || purged.GetDeletedInstanceCount() != 1 {
		t.Fatalf("purge q-1: %v, %v", purged, err)
	}
	_, err = n.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "q-wait"}})
	wantCode(t, err, codes.FailedPrecondition)
	purged, err = n.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "q-1"}})
	if err != nil || purged.GetDeletedInstanceCount() != 0 {
		t.Fatalf("purge q-1 again: %v, %v", purged, err)
	}
	purged, err = n.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_PurgeInstanceFilter{PurgeInstanceFilter: &pb.PurgeInstanceFilter{
		RuntimeStatus: []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED},
	}}})
	if err != nil || purged.GetDeletedInstanceCount() != 2 || !purged.GetIsComplete().GetValue() {
		t.Fatalf("purge by filter: %v, %v", purged, err)
	}
	gone, err := n.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "q-2"})
	if err != nil || gone.GetExists() {
		t.Fatalf("q-2 after purge: %v, %v", gone, err)
	}
}

// TestBadInputIsRefusedWithItsCodeAndChangesNothing: the caller's mistakes
// get InvalidArgument, NotFound, AlreadyExists or Unimplemented, never
// Internal, and start nothing.
func TestBadInputIsRefusedWithItsCodeAndChangesNothing(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	ctx := testCtx(t)
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "taken", Name: "WaitForApproval"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"start without a name", func() error {
			_, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "bad-1"})
			return err
		}, codes.InvalidArgument},
		{"start an unregistered orchestrator", func() error {
			_, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "bad-2", Name: "Nobody"})
			return err
		}, codes.InvalidArgument},
		{"start with malformed JSON", func() error {
			_, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "bad-3", Name: "Greet", Input: str(`{"city":`)})
			return err
		}, codes.InvalidArgument},
		{"start with an invalid id", func() error {
			_, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "bad/4", Name: "Greet"})
			return err
		}, codes.InvalidArgument},
		{"start a running id", func() error {
			_, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "taken", Name: "WaitForApproval"})
			return err
		}, codes.AlreadyExists},
		{"raise to a missing instance", func() error {
			_, err := n.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "nobody", Name: "Approval"})
			return err
		}, codes.NotFound},
		{"raise without a name", func() error {
			_, err := n.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "taken"})
			return err
		}, codes.InvalidArgument},
		{"terminate recursively", func() error {
			_, err := n.client.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: "taken", Recursive: true})
			return err
		}, codes.Unimplemented},
		{"query an unknown status", func() error {
			_, err := n.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{RuntimeStatus: []pb.OrchestrationStatus{42}}})
			return err
		}, codes.InvalidArgument},
		{"query a page too large", func() error {
			_, err := n.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{MaxInstanceCount: 100000}})
			return err
		}, codes.InvalidArgument},
		{"purge without a target", func() error {
			_, err := n.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{})
			return err
		}, codes.InvalidArgument},
		{"purge running by filter", func() error {
			_, err := n.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_PurgeInstanceFilter{PurgeInstanceFilter: &pb.PurgeInstanceFilter{
				RuntimeStatus: []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING},
			}}})
			return err
		}, codes.InvalidArgument},
		{"history of a missing instance", func() error {
			stream, err := n.client.StreamInstanceHistory(ctx, &pb.StreamInstanceHistoryRequest{InstanceId: "nobody"})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}, codes.NotFound},
		{"complete with an unknown token", func() error {
			_, err := n.client.CompleteActivityTask(ctx, &pb.ActivityResponse{CompletionToken: "x.1.1"})
			return err
		}, codes.NotFound},
		{"complete with a malformed token", func() error {
			_, err := n.client.CompleteActivityTask(ctx, &pb.ActivityResponse{CompletionToken: "nonsense"})
			return err
		}, codes.InvalidArgument},
		{"create a task hub", func() error {
			_, err := n.client.CreateTaskHub(ctx, &pb.CreateTaskHubRequest{})
			return err
		}, codes.Unimplemented},
		{"delete the task hub", func() error {
			_, err := n.client.DeleteTaskHub(ctx, &pb.DeleteTaskHubRequest{})
			return err
		}, codes.Unimplemented},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.code) })
	}
	for _, id := range []string{"bad-1", "bad-2", "bad-3"} {
		r, err := n.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: id})
		if err != nil || r.GetExists() {
			t.Errorf("%s exists after a refused start: %v %v", id, r, err)
		}
	}
	// The refused terminate changed nothing.
	r, err := n.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "taken"})
	if err != nil || r.GetOrchestrationState().GetOrchestrationStatus() == pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED {
		t.Fatalf("taken: %v %v", r, err)
	}
}

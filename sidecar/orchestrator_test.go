package sidecar_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// The Go tests' remote orchestrators: stateless functions of the history a
// work item carries, as a worker SDK's replay is.

// citiesTurn is "RemoteCities": Hello(Tokyo) then Hello(London), each an
// activity under task ids 1 and 2, then the two greetings.
func citiesTurn(req *pb.OrchestratorRequest) []*pb.OrchestratorAction {
	scheduled, results := map[int32]bool{}, map[int32]string{}
	for _, ev := range append(append([]*pb.HistoryEvent{}, req.GetPastEvents()...), req.GetNewEvents()...) {
		if ev.GetTaskScheduled() != nil {
			scheduled[ev.GetEventId()] = true
		}
		if c := ev.GetTaskCompleted(); c != nil {
			results[c.GetTaskScheduledId()] = c.GetResult().GetValue()
		}
	}
	var out []string
	for i, city := range []string{"Tokyo", "London"} {
		id := int32(i + 1)
		r, ok := results[id]
		if !ok {
			if scheduled[id] {
				return nil
			}
			return []*pb.OrchestratorAction{{Id: id, OrchestratorActionType: &pb.OrchestratorAction_ScheduleTask{ScheduleTask: &pb.ScheduleTaskAction{Name: "Hello", Input: str(`"` + city + `"`)}}}}
		}
		out = append(out, r)
	}
	return []*pb.OrchestratorAction{completeWith(`[` + strings.Join(out, ",") + `]`)}
}

// approvalTurn is "RemoteApproval": a timer an hour away raced against the
// event "Approval", whose payload is the output.
func approvalTurn(req *pb.OrchestratorRequest) []*pb.OrchestratorAction {
	timer := false
	var start time.Time
	for _, ev := range append(append([]*pb.HistoryEvent{}, req.GetPastEvents()...), req.GetNewEvents()...) {
		if ev.GetOrchestratorStarted() != nil && start.IsZero() {
			start = ev.GetTimestamp().AsTime()
		}
		if ev.GetTimerCreated() != nil {
			timer = true
		}
		if e := ev.GetEventRaised(); e != nil && strings.EqualFold(e.GetName(), "Approval") {
			return []*pb.OrchestratorAction{completeWith(e.GetInput().GetValue())}
		}
		if ev.GetTimerFired() != nil {
			return []*pb.OrchestratorAction{completeWith(`"timed out"`)}
		}
	}
	if timer {
		return nil
	}
	return []*pb.OrchestratorAction{{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_CreateTimer{CreateTimer: &pb.CreateTimerAction{FireAt: timestamppb.New(start.Add(time.Hour))}}}}
}

func completeWith(result string) *pb.OrchestratorAction {
	return &pb.OrchestratorAction{Id: -1, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{CompleteOrchestration: &pb.CompleteOrchestrationAction{
		OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, Result: str(result),
	}}}
}

// serveTurns answers every orchestrator work item w gets with turns, until
// the test ends; it returns at once.
func serveTurns(t *testing.T, n *node, w *worker, turns map[string]func(*pb.OrchestratorRequest) []*pb.OrchestratorAction) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var item *pb.WorkItem
			select {
			case item = <-w.items:
			case <-stop:
				return
			}
			req := item.GetOrchestratorRequest()
			if req == nil {
				continue
			}
			name := orchestratorName(req)
			ctx := testCtx(t)
			_, err := n.client.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{
				InstanceId: req.GetInstanceId(), Actions: turns[name](req), CompletionToken: item.GetCompletionToken(),
			})
			// A completion still in flight when the test ends is canceled
			// with the test's context: not a failure of the node.
			if err != nil && ctx.Err() == nil {
				t.Errorf("complete %s turn: %v", name, err)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

func orchestratorName(req *pb.OrchestratorRequest) string {
	for _, ev := range append(append([]*pb.HistoryEvent{}, req.GetPastEvents()...), req.GetNewEvents()...) {
		if s := ev.GetExecutionStarted(); s != nil {
			return s.GetName()
		}
	}
	return ""
}

var remoteTurns = map[string]func(*pb.OrchestratorRequest) []*pb.OrchestratorAction{
	"RemoteCities":   citiesTurn,
	"RemoteApproval": approvalTurn,
}

func TestRemoteOrchestratorRunsOnTheEngineAndCallsGoActivities(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	serveTurns(t, n, w, remoteTurns)
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: "rc-1", Name: "RemoteCities"}); err != nil {
		t.Fatal(err)
	}
	st := waitOutput(t, n, "rc-1")
	if st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || st.GetOutput().GetValue() != `["Hello Tokyo!","Hello London!"]` {
		t.Fatalf("state %v", st)
	}
	var ids []int32
	for _, ev := range streamHistory(t, n, "rc-1") {
		if ev.GetTaskScheduled() != nil {
			ids = append(ids, ev.GetEventId())
		}
	}
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 2 {
		t.Fatalf("scheduled task ids %v, want the worker's [1 2]", ids)
	}
}

func TestGoOrchestratorCallsARemoteSubOrchestration(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), func(rt *durable.Runtime) {
		goApp(rt)
		_ = rt.RegisterOrchestrator("Parent", func(ctx *orchestration.Context) (any, error) {
			return orchestration.Await[[]string](ctx.CallSubOrchestrator("RemoteCities", nil))
		})
	})
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	serveTurns(t, n, w, remoteTurns)
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: "parent-1", Name: "Parent"}); err != nil {
		t.Fatal(err)
	}
	if got := waitOutput(t, n, "parent-1").GetOutput().GetValue(); got != `["Hello Tokyo!","Hello London!"]` {
		t.Fatalf("output %s", got)
	}
}

func TestRemoteOrchestrationWaitsForAnEventRacedAgainstATimer(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	serveTurns(t, n, w, remoteTurns)
	ctx := testCtx(t)
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "ra-1", Name: "RemoteApproval"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.SuspendInstance(ctx, &pb.SuspendRequest{InstanceId: "ra-1"}); err != nil {
		t.Fatal(err)
	}
	r, err := n.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "ra-1"})
	if err != nil || r.GetOrchestrationState().GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_SUSPENDED {
		t.Fatalf("after suspend: %v %v", r, err)
	}
	if _, err := n.client.ResumeInstance(ctx, &pb.ResumeRequest{InstanceId: "ra-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "ra-1", Name: "approval", Input: str(`"approved"`)}); err != nil {
		t.Fatal(err)
	}
	if got := waitOutput(t, n, "ra-1").GetOutput().GetValue(); got != `"approved"` {
		t.Fatalf("output %s", got)
	}
}

func TestRemoteOrchestrationStartedBeforeAnyWorkerAndSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, sidecarOpts(), goApp)
	// A worker that announces RemoteCities takes the first turn and
	// disconnects without answering.
	w := connect(t, n, &pb.GetWorkItemsRequest{WorkItemFilters: &pb.WorkItemFilters{Orchestrations: []*pb.OrchestrationFilter{{Name: "RemoteCities"}}}})
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: "rc-restart", Name: "RemoteCities"}); err != nil {
		t.Fatal(err)
	}
	lost := w.next()
	if lost.GetOrchestratorRequest().GetInstanceId() != "rc-restart" {
		t.Fatalf("work item %v", lost)
	}
	w.disconnect()
	n.stop()

	n = startNode(t, dir, sidecarOpts(), goApp)
	_, err := n.client.CompleteOrchestratorTask(testCtx(t), &pb.OrchestratorResponse{InstanceId: "rc-restart", CompletionToken: lost.GetCompletionToken()})
	wantCode(t, err, codes.NotFound)
	w = connect(t, n, &pb.GetWorkItemsRequest{})
	serveTurns(t, n, w, remoteTurns)
	if got := waitOutput(t, n, "rc-restart").GetOutput().GetValue(); got != `["Hello Tokyo!","Hello London!"]` {
		t.Fatalf("output %s", got)
	}
}

func TestStartingANameNoWorkerOrGoCodeServesIsRefused(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	connect(t, n, &pb.GetWorkItemsRequest{WorkItemFilters: &pb.WorkItemFilters{Orchestrations: []*pb.OrchestrationFilter{{Name: "RemoteCities"}}}})
	_, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{Name: "Nobody"})
	wantCode(t, err, codes.InvalidArgument)
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{Name: "RemoteCities"}); err != nil {
		t.Fatal(err)
	}
}

func TestTerminateDoesNotWaitForAWorkerThatHoldsTheTurn(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	ctx := testCtx(t)
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "rc-term", Name: "RemoteCities"}); err != nil {
		t.Fatal(err)
	}
	held := w.next() // never answered
	if _, err := n.client.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: "rc-term", Output: str(`"stop"`)}); err != nil {
		t.Fatal(err)
	}
	if st := waitOutput(t, n, "rc-term"); st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED {
		t.Fatalf("state %v", st)
	}
	_, err := n.client.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{InstanceId: "rc-term", Actions: citiesTurn(held.GetOrchestratorRequest()), CompletionToken: held.GetCompletionToken()})
	wantCode(t, err, codes.NotFound)
}

func TestMalformedTurnIsRefusedAndAnUnsupportedActionFailsTheInstance(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	ctx := testCtx(t)
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "rc-bad", Name: "RemoteCities"}); err != nil {
		t.Fatal(err)
	}
	item := w.next()
	badJSON := []*pb.OrchestratorAction{{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_ScheduleTask{ScheduleTask: &pb.ScheduleTaskAction{Name: "Hello", Input: str(`{oops`)}}}}
	_, err := n.client.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{Actions: badJSON, CompletionToken: item.GetCompletionToken()})
	wantCode(t, err, codes.InvalidArgument)
	sendEvent := []*pb.OrchestratorAction{{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_SendEvent{SendEvent: &pb.SendEventAction{Instance: &pb.OrchestrationInstance{InstanceId: "x"}, Name: "E"}}}}
	if _, err := n.client.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{Actions: sendEvent, CompletionToken: item.GetCompletionToken()}); err != nil {
		t.Fatal(err)
	}
	st := waitOutput(t, n, "rc-bad")
	if st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED || st.GetFailureDetails().GetErrorType() != "NotSupported" ||
		!strings.Contains(st.GetFailureDetails().GetErrorMessage(), "sendEvent") {
		t.Fatalf("state %v", st)
	}
}

func TestRewindingARemoteOrchestrationIsRefusedClearly(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	ctx := testCtx(t)
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "rc-rewind", Name: "RemoteCities"}); err != nil {
		t.Fatal(err)
	}
	item := w.next()
	failed := &pb.OrchestratorAction{Id: -1, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{CompleteOrchestration: &pb.CompleteOrchestrationAction{
		OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED,
		FailureDetails:      &pb.TaskFailureDetails{ErrorType: "Error", ErrorMessage: "boom", StackTrace: str("at js:1")},
	}}}
	if _, err := n.client.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{Actions: []*pb.OrchestratorAction{failed}, CompletionToken: item.GetCompletionToken()}); err != nil {
		t.Fatal(err)
	}
	st := waitOutput(t, n, "rc-rewind")
	if f := st.GetFailureDetails(); f.GetErrorMessage() != "boom" || f.GetStackTrace().GetValue() != "at js:1" {
		t.Fatalf("failure %v", f)
	}
	_, err := n.client.RewindInstance(ctx, &pb.RewindInstanceRequest{InstanceId: "rc-rewind"})
	wantCode(t, err, codes.InvalidArgument)
}

func TestRaiseEventToARemoteInstanceIsAcknowledgedWithoutAWorker(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	ctx := testCtx(t)
	silent := connect(t, n, &pb.GetWorkItemsRequest{WorkItemFilters: &pb.WorkItemFilters{Orchestrations: []*pb.OrchestrationFilter{{Name: "RemoteApproval"}}}})
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "ra-inbox", Name: "RemoteApproval"}); err != nil {
		t.Fatal(err)
	}
	held := silent.next() // the first turn, held and never answered
	// The raise returns once the event is durable, while the turn is held.
	if _, err := n.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "ra-inbox", Name: "Approval", Input: str(`"yes"`)}); err != nil {
		t.Fatal(err)
	}
	silent.disconnect() // its turn goes to the next worker
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	serveTurns(t, n, w, remoteTurns)
	if got := waitOutput(t, n, "ra-inbox").GetOutput().GetValue(); got != `"yes"` {
		t.Fatalf("output %s (held turn %v)", got, held.GetOrchestratorRequest().GetInstanceId())
	}
}

func TestWorkerReusingAnOpenTaskIDFailsTheInstance(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	ctx := testCtx(t)
	if _, err := n.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "rc-dup", Name: "RemoteApproval"}); err != nil {
		t.Fatal(err)
	}
	timer := func(item *pb.WorkItem) {
		t.Helper()
		fire := timestamppb.New(time.Now().Add(time.Hour))
		actions := []*pb.OrchestratorAction{{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_CreateTimer{CreateTimer: &pb.CreateTimerAction{FireAt: fire}}}}
		if _, err := n.client.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{Actions: actions, CompletionToken: item.GetCompletionToken()}); err != nil {
			t.Fatal(err)
		}
	}
	timer(w.next())
	if _, err := n.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "rc-dup", Name: "Other"}); err != nil {
		t.Fatal(err)
	}
	timer(w.next()) // timer 1 again, while it is open
	st := waitOutput(t, n, "rc-dup")
	if st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED || st.GetFailureDetails().GetErrorType() != "InvalidWorkerAnswer" {
		t.Fatalf("state %v", st)
	}
}

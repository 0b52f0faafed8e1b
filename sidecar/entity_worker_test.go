package sidecar_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// remoteEntityApp has Go orchestrations that call and signal the entity
// "RCounter", which no Go code serves: only a remote worker does.
func remoteEntityApp(rt *durable.Runtime) {
	_ = rt.RegisterOrchestrator("CallCounter", func(ctx *orchestration.Context) (any, error) {
		var key string
		if err := ctx.Input(&key); err != nil {
			return nil, err
		}
		id := orchestration.EntityID{Name: "RCounter", Key: key}
		if _, err := orchestration.Await[any](ctx.CallEntity(id, "add", 2)); err != nil {
			return nil, err
		}
		if err := ctx.SignalEntity(id, "add", 3); err != nil {
			return nil, err
		}
		return orchestration.Await[int](ctx.CallEntity(id, "get", nil))
	})
	// LockCounter holds the counter of its input in a critical section
	// across an event: other operations wait until it releases.
	_ = rt.RegisterOrchestrator("LockCounter", func(ctx *orchestration.Context) (any, error) {
		var key string
		if err := ctx.Input(&key); err != nil {
			return nil, err
		}
		id := orchestration.EntityID{Name: "RCounter", Key: key}
		cs, err := ctx.LockEntities(id)
		if err != nil {
			return nil, err
		}
		defer cs.Release()
		if _, err := orchestration.Await[any](ctx.CallEntity(id, "add", 1)); err != nil {
			return nil, err
		}
		if _, err := orchestration.Await[any](ctx.WaitForExternalEvent("go")); err != nil {
			return nil, err
		}
		return orchestration.Await[int](ctx.CallEntity(id, "get", nil))
	})
	_ = rt.RegisterOrchestrator("Echo", func(ctx *orchestration.Context) (any, error) {
		var v any
		err := ctx.Input(&v)
		return v, err
	})
	_ = rt.RegisterOrchestrator("CallBoom", func(ctx *orchestration.Context) (any, error) {
		_, err := orchestration.Await[any](ctx.CallEntity(orchestration.EntityID{Name: "RCounter", Key: "boom"}, "boom", nil))
		if err == nil {
			return "no failure", nil
		}
		return err.Error(), nil
	})
}

// entityItem returns the next work item of w, which must be an entity
// batch.
func entityItem(t *testing.T, w *worker) *pb.WorkItem {
	t.Helper()
	item := w.next()
	if item.GetEntityRequest() == nil {
		t.Fatalf("not an entity batch: %v", item)
	}
	return item
}

func opNames(item *pb.WorkItem) string {
	var names []string
	for _, op := range item.GetEntityRequest().GetOperations() {
		names = append(names, op.GetOperation()+"("+op.GetInput().GetValue()+")")
	}
	return strings.Join(names, " ")
}

func success(result string) *pb.OperationResult {
	return &pb.OperationResult{ResultType: &pb.OperationResult_Success{Success: &pb.OperationResultSuccess{Result: str(result)}}}
}

func completeEntity(t *testing.T, n *node, item *pb.WorkItem, state string, results ...*pb.OperationResult) error {
	t.Helper()
	res := &pb.EntityBatchResult{Results: results, CompletionToken: item.GetCompletionToken()}
	if state != "" {
		res.EntityState = wrapperspb.String(state)
	}
	_, err := n.client.CompleteEntityTask(testCtx(t), res)
	return err
}

// runCounter answers w's entity batches as a counter would: "add" adds
// its input, "get" returns the count, "boom" fails (and is rolled back),
// "tell" signals "add 1" to the entity its input names, "spawn" starts the
// orchestration "Echo" of the count under the instance id it is given.
func runCounter(t *testing.T, n *node, w *worker) {
	go func() {
		for item := range w.items {
			req := item.GetEntityRequest()
			if req == nil {
				continue
			}
			var count int
			if s := req.GetEntityState(); s != nil {
				_ = json.Unmarshal([]byte(s.GetValue()), &count)
			}
			res := &pb.EntityBatchResult{CompletionToken: item.GetCompletionToken()}
			for _, op := range req.GetOperations() {
				switch op.GetOperation() {
				case "add":
					var by int
					_ = json.Unmarshal([]byte(op.GetInput().GetValue()), &by)
					count += by
					res.Results = append(res.Results, success(""))
				case "spawn":
					var instance string
					_ = json.Unmarshal([]byte(op.GetInput().GetValue()), &instance)
					res.Actions = append(res.Actions, &pb.OperationAction{Id: int32(len(res.Actions)), OperationActionType: &pb.OperationAction_StartNewOrchestration{StartNewOrchestration: &pb.StartNewOrchestrationAction{
						InstanceId: instance, Name: "Echo", Input: str(fmt.Sprint(count))}}})
					res.Results = append(res.Results, success(""))
				case "get":
					res.Results = append(res.Results, success(fmt.Sprint(count)))
				case "tell":
					var target string
					_ = json.Unmarshal([]byte(op.GetInput().GetValue()), &target)
					res.Actions = append(res.Actions, &pb.OperationAction{Id: int32(len(res.Actions)), OperationActionType: &pb.OperationAction_SendSignal{SendSignal: &pb.SendSignalAction{InstanceId: target, Name: "add", Input: str("1")}}})
					res.Results = append(res.Results, success(""))
				default:
					res.Results = append(res.Results, &pb.OperationResult{ResultType: &pb.OperationResult_Failure{Failure: &pb.OperationResultFailure{
						FailureDetails: &pb.TaskFailureDetails{ErrorType: "BoomError", ErrorMessage: "boom: " + op.GetOperation()}}}})
				}
			}
			res.EntityState = wrapperspb.String(fmt.Sprint(count))
			_, _ = n.client.CompleteEntityTask(testCtx(t), res)
		}
	}()
}

// entityState polls GetEntity until the entity's state is want.
func entityState(t *testing.T, n *node, id, want string) {
	t.Helper()
	var got *pb.GetEntityResponse
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		got, err = n.client.GetEntity(testCtx(t), &pb.GetEntityRequest{InstanceId: id, IncludeState: true})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetEntity().GetSerializedState().GetValue() == want {
			return
		}
	}
	t.Fatalf("entity %s: %v, want state %s", id, got, want)
}

func signal(t *testing.T, n *node, id, op, input string) {
	t.Helper()
	if _, err := n.client.SignalEntity(testCtx(t), &pb.SignalEntityRequest{InstanceId: id, Name: op, Input: str(input)}); err != nil {
		t.Fatal(err)
	}
}

func TestRemoteEntityIsSignalledCalledAndReadOverGRPC(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteEntityApp)
	// No worker has said it serves the name yet: the client refuses it.
	_, err := n.client.SignalEntity(testCtx(t), &pb.SignalEntityRequest{InstanceId: "@rcounter@a", Name: "add", Input: str("5")})
	wantCode(t, err, codes.InvalidArgument)

	w := connect(t, n, &pb.GetWorkItemsRequest{WorkItemFilters: &pb.WorkItemFilters{Entities: []*pb.EntityFilter{{Name: "RCounter"}}}})
	// A signal is acknowledged once durable, without waiting for the worker.
	signal(t, n, "@rcounter@a", "add", "5")
	first := entityItem(t, w)
	if first.GetEntityRequest().GetInstanceId() != "@rcounter@a" || first.GetEntityRequest().GetEntityState() != nil || opNames(first) != "add(5)" {
		t.Fatalf("first batch %v", first)
	}
	// While the batch is out, later operations wait, in order.
	signal(t, n, "@rcounter@a", "add", "10")
	signal(t, n, "@rcounter@a", "tell", `"@rcounter@b"`)
	select {
	case item := <-w.items:
		t.Fatalf("a second batch while the first is out: %v", item)
	case <-time.After(100 * time.Millisecond):
	}
	if err := completeEntity(t, n, first, "5", success("")); err != nil {
		t.Fatal(err)
	}
	second := entityItem(t, w)
	if opNames(second) != `add(10) tell("@rcounter@b")` || second.GetEntityRequest().GetEntityState().GetValue() != "5" {
		t.Fatalf("second batch %v", second)
	}
	entityState(t, n, "@rcounter@a", "5")
	runCounter(t, n, w)
	w.items <- second // the counter answers it
	entityState(t, n, "@rcounter@a", "15")
	entityState(t, n, "@rcounter@b", "1") // signalled by the entity's action

	// A Go orchestration calls and signals it.
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: "call-counter", Name: "CallCounter", Input: str(`"a"`)}); err != nil {
		t.Fatal(err)
	}
	if got := waitOutput(t, n, "call-counter").GetOutput().GetValue(); got != "20" {
		t.Fatalf("CallCounter output %s", got)
	}
	q, err := n.client.QueryEntities(testCtx(t), &pb.QueryEntitiesRequest{Query: &pb.EntityQuery{InstanceIdStartsWith: str("@rcounter@"), IncludeState: true}})
	if err != nil || len(q.GetEntities()) != 2 {
		t.Fatalf("query %v %v", q, err)
	}
}

func TestRemoteEntityOperationFailureIsReportedToItsCaller(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteEntityApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	runCounter(t, n, w)
	signal(t, n, "@rcounter@boom", "add", "4")
	entityState(t, n, "@rcounter@boom", "4")
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: "call-boom", Name: "CallBoom"}); err != nil {
		t.Fatal(err)
	}
	st := waitOutput(t, n, "call-boom")
	if st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || !strings.Contains(st.GetOutput().GetValue(), "boom: boom") {
		t.Fatalf("CallBoom %v", st)
	}
	entityState(t, n, "@rcounter@boom", "4")
}

func TestRemoteEntityBatchGoesToAnotherWorkerAndAStaleCompletionIsRejected(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteEntityApp)
	first := connect(t, n, &pb.GetWorkItemsRequest{})
	signal(t, n, "@rcounter@c", "add", "7")
	held := entityItem(t, first)
	first.disconnect() // mid-batch

	second := connect(t, n, &pb.GetWorkItemsRequest{MaxConcurrentEntityWorkItems: 1})
	again := entityItem(t, second)
	if opNames(again) != "add(7)" || again.GetCompletionToken() == held.GetCompletionToken() {
		t.Fatalf("redispatched %v after %v", again, held)
	}
	wantCode(t, completeEntity(t, n, held, "700", success("")), codes.FailedPrecondition)
	// A malformed answer is refused and the lease stays.
	wantCode(t, completeEntity(t, n, again, "7"), codes.InvalidArgument)
	wantCode(t, completeEntity(t, n, again, "{", success("")), codes.InvalidArgument)
	if err := completeEntity(t, n, again, "7", success("")); err != nil {
		t.Fatal(err)
	}
	entityState(t, n, "@rcounter@c", "7")
	wantCode(t, completeEntity(t, n, again, "8", success("")), codes.NotFound)
}

func TestRemoteEntityBatchFailedByTheWorkerRunsAgain(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteEntityApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	signal(t, n, "@rcounter@d", "add", "1")
	item := entityItem(t, w)
	if _, err := n.client.CompleteEntityTask(testCtx(t), &pb.EntityBatchResult{CompletionToken: item.GetCompletionToken(),
		FailureDetails: &pb.TaskFailureDetails{ErrorType: "Crash", ErrorMessage: "the worker broke"}}); err != nil {
		t.Fatal(err)
	}
	again := entityItem(t, w)
	if opNames(again) != "add(1)" {
		t.Fatalf("after the failed batch %v", again)
	}
	if _, err := n.client.AbandonTaskEntityWorkItem(testCtx(t), &pb.AbandonEntityTaskRequest{CompletionToken: again.GetCompletionToken()}); err != nil {
		t.Fatal(err)
	}
	last := entityItem(t, w)
	if err := completeEntity(t, n, last, "1", success("")); err != nil {
		t.Fatal(err)
	}
	entityState(t, n, "@rcounter@d", "1")
}

func TestRemoteEntityBatchSurvivesANodeRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, sidecarOpts(), remoteEntityApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	signal(t, n, "@rcounter@e", "add", "3")
	signal(t, n, "@rcounter@e", "add", "4")
	lost := entityItem(t, w) // leased, never completed: the node goes down
	w.disconnect()
	n.stop()

	n = startNode(t, dir, sidecarOpts(), remoteEntityApp)
	wantCode(t, completeEntity(t, n, lost, "3", success("")), codes.NotFound)
	w = connect(t, n, &pb.GetWorkItemsRequest{})
	var ops []string
	for len(ops) < 2 {
		item := entityItem(t, w)
		ops = append(ops, opNames(item))
		var results []*pb.OperationResult
		for range item.GetEntityRequest().GetOperations() {
			results = append(results, success(""))
		}
		state := "3"
		if len(results) == 2 || item.GetEntityRequest().GetEntityState() != nil {
			state = "7"
		}
		if err := completeEntity(t, n, item, state, results...); err != nil {
			t.Fatal(err)
		}
		ops = strings.Fields(strings.Join(ops, " "))
	}
	if strings.Join(ops, " ") != "add(3) add(4)" {
		t.Fatalf("after the restart the worker got %v", ops)
	}
	entityState(t, n, "@rcounter@e", "7")
}

func TestRemoteEntityInACriticalSectionMakesOthersWait(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteEntityApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	runCounter(t, n, w)
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: "lock-counter", Name: "LockCounter", Input: str(`"f"`)}); err != nil {
		t.Fatal(err)
	}
	entityState(t, n, "@rcounter@f", "1") // locked, then called
	signal(t, n, "@rcounter@f", "add", "100")
	time.Sleep(100 * time.Millisecond)
	entityState(t, n, "@rcounter@f", "1") // the signal waits for the release
	if _, err := n.client.RaiseEvent(testCtx(t), &pb.RaiseEventRequest{InstanceId: "lock-counter", Name: "go"}); err != nil {
		t.Fatal(err)
	}
	if got := waitOutput(t, n, "lock-counter").GetOutput().GetValue(); got != "1" {
		t.Fatalf("LockCounter output %s", got)
	}
	entityState(t, n, "@rcounter@f", "101")
}

func TestRemoteEntityCalledBeforeAnyWorkerWaitsForOne(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteEntityApp)
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: "early-call", Name: "CallCounter", Input: str(`"g"`)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the call waits in the entity's inbox
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	runCounter(t, n, w)
	if got := waitOutput(t, n, "early-call").GetOutput().GetValue(); got != "5" {
		t.Fatalf("CallCounter output %s", got)
	}
}

// callsCounterTurn is "RemoteCallsCounter": it signals the Go entity
// "@gocounter@x" "add 10" (action 1), then calls "add 5" (action 2, request
// id "req-2") and completes with the call's result, which must come back
// under the call's request id.
func callsCounterTurn(req *pb.OrchestratorRequest) []*pb.OrchestratorAction {
	called := false
	for _, ev := range append(append([]*pb.HistoryEvent{}, req.GetPastEvents()...), req.GetNewEvents()...) {
		if c := ev.GetEntityOperationCalled(); c != nil {
			called = c.GetRequestId() == "req-2" && ev.GetEventId() == 2
		}
		if c := ev.GetEntityOperationCompleted(); c != nil {
			if c.GetRequestId() != "req-2" || !called {
				return []*pb.OrchestratorAction{completeWith(`"the response lost its request id"`)}
			}
			return []*pb.OrchestratorAction{completeWith(c.GetOutput().GetValue())}
		}
	}
	if called {
		return nil
	}
	target := wrapperspb.String("@gocounter@x")
	return []*pb.OrchestratorAction{
		{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_SendEntityMessage{SendEntityMessage: &pb.SendEntityMessageAction{
			EntityMessageType: &pb.SendEntityMessageAction_EntityOperationSignaled{EntityOperationSignaled: &pb.EntityOperationSignaledEvent{
				RequestId: "sig-1", Operation: "add", Input: str("10"), TargetInstanceId: target}}}}},
		{Id: 2, OrchestratorActionType: &pb.OrchestratorAction_SendEntityMessage{SendEntityMessage: &pb.SendEntityMessageAction{
			EntityMessageType: &pb.SendEntityMessageAction_EntityOperationCalled{EntityOperationCalled: &pb.EntityOperationCalledEvent{
				RequestId: "req-2", Operation: "add", Input: str("5"), TargetInstanceId: target}}}}},
	}
}

// goCounterApp has the Go entity "GoCounter": "add" adds its input and
// returns the count.
func goCounterApp(rt *durable.Runtime) {
	_ = rt.RegisterEntity("GoCounter", func(ctx *orchestration.EntityContext) error {
		var count, by int
		_ = ctx.GetState(&count)
		if err := ctx.Input(&by); err != nil {
			return err
		}
		count += by
		if err := ctx.SetState(count); err != nil {
			return err
		}
		return ctx.Return(count)
	})
}

func TestRemoteOrchestrationSignalsAndCallsAnEntity(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goCounterApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	serveTurns(t, n, w, map[string]func(*pb.OrchestratorRequest) []*pb.OrchestratorAction{"RemoteCallsCounter": callsCounterTurn})
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: "remote-calls", Name: "RemoteCallsCounter"}); err != nil {
		t.Fatal(err)
	}
	if got := waitOutput(t, n, "remote-calls").GetOutput().GetValue(); got != "15" {
		t.Fatalf("RemoteCallsCounter output %s", got)
	}
	entityState(t, n, "@gocounter@x", "15")
}

func TestRemoteEntityStartsAnOrchestration(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteEntityApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	runCounter(t, n, w)
	signal(t, n, "@rcounter@h", "add", "42")
	signal(t, n, "@rcounter@h", "spawn", `"spawned-echo"`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, err := n.client.GetInstance(testCtx(t), &pb.GetInstanceRequest{InstanceId: "spawned-echo"})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetExists() || time.Now().After(deadline) {
			break
		}
	}
	if got := waitOutput(t, n, "spawned-echo"); got.GetOutput().GetValue() != "42" {
		t.Fatalf("Echo %v", got)
	}
}

func TestRemoteEntityBatchPastItsLeaseIsDispatchedAgain(t *testing.T) {
	opts := sidecarOpts()
	opts.LeaseTimeout = 20 * time.Millisecond
	n := startNode(t, "", opts, remoteEntityApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	signal(t, n, "@rcounter@i", "add", "1")
	missed := entityItem(t, w)
	retried := entityItem(t, w) // the same worker, under a new lease
	if opNames(retried) != opNames(missed) || retried.GetCompletionToken() == missed.GetCompletionToken() {
		t.Fatalf("got %v after %v", retried, missed)
	}
	wantCode(t, completeEntity(t, n, missed, "1", success("")), codes.FailedPrecondition)
}

// locksTurn is "RemoteLocks": it locks "@gocounter@z" (action 1, critical
// section "cs-1"), calls "add 5" inside (action 2), and ends without
// releasing the lock.
func locksTurn(req *pb.OrchestratorRequest) []*pb.OrchestratorAction {
	granted, called := false, false
	for _, ev := range append(append([]*pb.HistoryEvent{}, req.GetPastEvents()...), req.GetNewEvents()...) {
		if g := ev.GetEntityLockGranted(); g != nil {
			if g.GetCriticalSectionId() != "cs-1" {
				return []*pb.OrchestratorAction{completeWith(`"the grant lost its critical section id"`)}
			}
			granted = true
		}
		if ev.GetEntityOperationCalled() != nil {
			called = true
		}
		if c := ev.GetEntityOperationCompleted(); c != nil {
			return []*pb.OrchestratorAction{completeWith(c.GetOutput().GetValue())}
		}
	}
	target := "@gocounter@z"
	switch {
	case called:
		return nil
	case granted:
		return []*pb.OrchestratorAction{{Id: 2, OrchestratorActionType: &pb.OrchestratorAction_SendEntityMessage{SendEntityMessage: &pb.SendEntityMessageAction{
			EntityMessageType: &pb.SendEntityMessageAction_EntityOperationCalled{EntityOperationCalled: &pb.EntityOperationCalledEvent{
				RequestId: "req-2", Operation: "add", Input: str("5"), TargetInstanceId: wrapperspb.String(target)}}}}}}
	case len(req.GetPastEvents()) > 0:
		return nil // the lock is requested
	}
	return []*pb.OrchestratorAction{{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_SendEntityMessage{SendEntityMessage: &pb.SendEntityMessageAction{
		EntityMessageType: &pb.SendEntityMessageAction_EntityLockRequested{EntityLockRequested: &pb.EntityLockRequestedEvent{
			CriticalSectionId: "cs-1", LockSet: []string{target}}}}}}}
}

func TestRemoteOrchestrationLocksAnEntityAndItsLockIsReleasedAtItsEnd(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), goCounterApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	serveTurns(t, n, w, map[string]func(*pb.OrchestratorRequest) []*pb.OrchestratorAction{"RemoteLocks": locksTurn})
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: "remote-locks", Name: "RemoteLocks"}); err != nil {
		t.Fatal(err)
	}
	if got := waitOutput(t, n, "remote-locks").GetOutput().GetValue(); got != "5" {
		t.Fatalf("RemoteLocks output %s", got)
	}
	signal(t, n, "@gocounter@z", "add", "1") // not held back: the lock went with the end
	entityState(t, n, "@gocounter@z", "6")
}

func TestRemoteEntityStateOverThePayloadLimitRollsTheBatchBack(t *testing.T) {
	n := startNodeWith(t, durable.Options{Partitions: 2, MaxPayloadBytes: 64}, sidecarOpts(), remoteEntityApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	signal(t, n, "@rcounter@big", "add", "1")
	if err := completeEntity(t, n, entityItem(t, w), "1", success("")); err != nil {
		t.Fatal(err)
	}
	entityState(t, n, "@rcounter@big", "1")
	signal(t, n, "@rcounter@big", "grow", "")
	huge := `"` + strings.Repeat("x", 100) + `"`
	if err := completeEntity(t, n, entityItem(t, w), huge, success("")); err != nil {
		t.Fatal(err)
	}
	// The batch is rolled back: the next one sees the state before it.
	signal(t, n, "@rcounter@big", "add", "1")
	next := entityItem(t, w)
	if next.GetEntityRequest().GetEntityState().GetValue() != "1" {
		t.Fatalf("after the refused state the entity has %v", next.GetEntityRequest().GetEntityState())
	}
	if err := completeEntity(t, n, next, "2", success("")); err != nil {
		t.Fatal(err)
	}
	entityState(t, n, "@rcounter@big", "2")
}

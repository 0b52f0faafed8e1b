package sidecar_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/sidecar"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// remoteApp is a Go orchestration whose activity "Shout" no Go code
// serves: only a remote worker does.
func remoteApp(rt *durable.Runtime) {
	_ = rt.RegisterOrchestrator("ShoutTwice", func(ctx *orchestration.Context) (any, error) {
		var word string
		if err := ctx.Input(&word); err != nil {
			return nil, err
		}
		a, err := orchestration.Await[string](ctx.CallActivity("Shout", word))
		if err != nil {
			return nil, err
		}
		return orchestration.Await[string](ctx.CallActivity("Shout", a))
	})
}

// worker is a Go gRPC client playing a remote worker.
type worker struct {
	t      *testing.T
	items  chan *pb.WorkItem
	pings  chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// connect opens a GetWorkItems stream; disconnect (or the test's end)
// closes it.
func connect(t *testing.T, n *node, req *pb.GetWorkItemsRequest) *worker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := n.client.GetWorkItems(ctx, req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &worker{t: t, items: make(chan *pb.WorkItem, 100), pings: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			item, err := stream.Recv()
			if err != nil {
				return
			}
			if item.GetHealthPing() != nil {
				select {
				case w.pings <- struct{}{}:
				default:
				}
				continue
			}
			w.items <- item
		}
	}()
	t.Cleanup(w.disconnect)
	select { // the first ping: the server has registered the stream
	case <-w.pings:
	case <-time.After(20 * time.Second):
		t.Fatal("no first health ping")
	}
	return w
}

func (w *worker) disconnect() {
	w.cancel()
	<-w.done
}

// next returns the next work item, failing the test if none comes.
func (w *worker) next() *pb.WorkItem {
	w.t.Helper()
	select {
	case item := <-w.items:
		return item
	case <-time.After(20 * time.Second):
		w.t.Fatal("no work item came")
		return nil
	}
}

func complete(t *testing.T, n *node, item *pb.WorkItem, result string) error {
	t.Helper()
	a := item.GetActivityRequest()
	_, err := n.client.CompleteActivityTask(testCtx(t), &pb.ActivityResponse{
		InstanceId: a.GetOrchestrationInstance().GetInstanceId(), TaskId: a.GetTaskId(),
		Result: str(result), CompletionToken: item.GetCompletionToken(),
	})
	return err
}

func startShout(t *testing.T, n *node, id string) {
	t.Helper()
	if _, err := n.client.StartInstance(testCtx(t), &pb.CreateInstanceRequest{InstanceId: id, Name: "ShoutTwice", Input: str(`"hey"`)}); err != nil {
		t.Fatal(err)
	}
}

func waitOutput(t *testing.T, n *node, id string) *pb.OrchestrationState {
	t.Helper()
	done, err := n.client.WaitForInstanceCompletion(testCtx(t), &pb.GetInstanceRequest{InstanceId: id, GetInputsAndOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	return done.GetOrchestrationState()
}

func TestGoOrchestrationCallsAnActivityOnlyARemoteWorkerServes(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	startShout(t, n, "shout-1")
	for _, want := range []struct{ in, out string }{{`"hey"`, `"HEY!"`}, {`"HEY!"`, `"HEY!!"`}} {
		item := w.next()
		a := item.GetActivityRequest()
		if a.GetName() != "Shout" || a.GetInput().GetValue() != want.in || a.GetOrchestrationInstance().GetInstanceId() != "shout-1" || item.GetCompletionToken() == "" {
			t.Fatalf("work item %v", item)
		}
		if err := complete(t, n, item, want.out); err != nil {
			t.Fatal(err)
		}
	}
	st := waitOutput(t, n, "shout-1")
	if st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || st.GetOutput().GetValue() != `"HEY!!"` {
		t.Fatalf("state %v", st)
	}
	// The history names the task the worker completed.
	var scheduled, completed []int32
	for _, ev := range streamHistory(t, n, "shout-1") {
		if ev.GetTaskScheduled() != nil {
			scheduled = append(scheduled, ev.GetEventId())
		}
		if c := ev.GetTaskCompleted(); c != nil {
			completed = append(completed, c.GetTaskScheduledId())
		}
	}
	if len(scheduled) != 2 || len(completed) != 2 || scheduled[0] != completed[0] || scheduled[1] != completed[1] {
		t.Fatalf("scheduled %v, completed %v", scheduled, completed)
	}
}

func TestRemoteActivityFailureKeepsTypeMessageStackAndInner(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	startShout(t, n, "shout-fail")
	item := w.next()
	_, err := n.client.CompleteActivityTask(testCtx(t), &pb.ActivityResponse{
		CompletionToken: item.GetCompletionToken(),
		FailureDetails: &pb.TaskFailureDetails{
			ErrorType: "TypeError", ErrorMessage: "cannot shout", StackTrace: str("at shout (worker.js:1)"),
			InnerFailure: &pb.TaskFailureDetails{ErrorType: "RangeError", ErrorMessage: "too quiet"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := waitOutput(t, n, "shout-fail")
	if st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED {
		t.Fatalf("status %v", st.GetOrchestrationStatus())
	}
	var failed *pb.TaskFailureDetails
	for _, ev := range streamHistory(t, n, "shout-fail") {
		if f := ev.GetTaskFailed(); f != nil {
			failed = f.GetFailureDetails()
		}
	}
	if failed.GetErrorType() != "TypeError" || failed.GetErrorMessage() != "cannot shout" ||
		failed.GetStackTrace().GetValue() != "at shout (worker.js:1)" || failed.GetInnerFailure().GetErrorMessage() != "too quiet" {
		t.Fatalf("task failure %v", failed)
	}
}

func TestDisconnectedWorkersItemGoesToAnotherAndItsLateCompletionIsStale(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteApp)
	first := connect(t, n, &pb.GetWorkItemsRequest{})
	startShout(t, n, "shout-2")
	held := first.next()
	first.disconnect() // mid-work item

	second := connect(t, n, &pb.GetWorkItemsRequest{})
	again := second.next()
	if again.GetActivityRequest().GetTaskId() != held.GetActivityRequest().GetTaskId() || again.GetCompletionToken() == held.GetCompletionToken() {
		t.Fatalf("redispatched %v after %v", again, held)
	}
	wantCode(t, complete(t, n, held, `"FIRST"`), codes.FailedPrecondition)
	if err := complete(t, n, again, `"SECOND"`); err != nil {
		t.Fatal(err)
	}
	if err := complete(t, n, second.next(), `"DONE"`); err != nil {
		t.Fatal(err)
	}
	if got := waitOutput(t, n, "shout-2").GetOutput().GetValue(); got != `"DONE"` {
		t.Fatalf("output %s", got)
	}
	// A second completion of a finished item is refused too.
	wantCode(t, complete(t, n, again, `"AGAIN"`), codes.NotFound)
}

func TestItemPastItsLeaseIsDispatchedAgain(t *testing.T) {
	opts := sidecarOpts()
	opts.LeaseTimeout = 20 * time.Millisecond
	n := startNode(t, "", opts, remoteApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	startShout(t, n, "shout-3")
	missed := w.next()
	retried := w.next() // the same worker, under a new lease
	if retried.GetActivityRequest().GetTaskId() != missed.GetActivityRequest().GetTaskId() {
		t.Fatalf("got %v after %v", retried, missed)
	}
	wantCode(t, complete(t, n, missed, `"LATE"`), codes.FailedPrecondition)
}

func TestAbandonedItemIsDispatchedAgain(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	startShout(t, n, "shout-4")
	item := w.next()
	if _, err := n.client.AbandonTaskActivityWorkItem(testCtx(t), &pb.AbandonActivityTaskRequest{CompletionToken: item.GetCompletionToken()}); err != nil {
		t.Fatal(err)
	}
	again := w.next()
	if again.GetActivityRequest().GetTaskId() != item.GetActivityRequest().GetTaskId() {
		t.Fatalf("got %v after abandoning %v", again, item)
	}
	wantCode(t, complete(t, n, item, `"X"`), codes.FailedPrecondition)
}

func TestWorkerFiltersChooseWhichActivitiesItGets(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteApp)
	other := connect(t, n, &pb.GetWorkItemsRequest{WorkItemFilters: &pb.WorkItemFilters{Activities: []*pb.ActivityFilter{{Name: "Whisper"}}}})
	shouter := connect(t, n, &pb.GetWorkItemsRequest{WorkItemFilters: &pb.WorkItemFilters{Activities: []*pb.ActivityFilter{{Name: "Shout"}}}})
	startShout(t, n, "shout-5")
	if err := complete(t, n, shouter.next(), `"A"`); err != nil {
		t.Fatal(err)
	}
	if err := complete(t, n, shouter.next(), `"B"`); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, n, "shout-5")
	select {
	case item := <-other.items:
		t.Fatalf("the Whisper worker got %v", item)
	default:
	}
}

func TestIdleStreamGetsHealthPings(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{}) // has taken the first ping
	select {
	case <-w.pings:
	case <-time.After(20 * time.Second):
		t.Fatal("no health ping after the first")
	}
}

func TestRemoteWorkSurvivesANodeRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, sidecarOpts(), remoteApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	startShout(t, n, "shout-6")
	lost := w.next() // leased, never completed: the node goes down
	w.disconnect()
	n.stop()

	n = startNode(t, dir, sidecarOpts(), remoteApp)
	wantCode(t, complete(t, n, lost, `"LOST"`), codes.NotFound)
	w = connect(t, n, &pb.GetWorkItemsRequest{})
	item := w.next()
	if item.GetActivityRequest().GetInput().GetValue() != `"hey"` {
		t.Fatalf("after restart %v", item)
	}
	if err := complete(t, n, item, `"ONE"`); err != nil {
		t.Fatal(err)
	}
	if err := complete(t, n, w.next(), `"TWO"`); err != nil {
		t.Fatal(err)
	}
	if got := waitOutput(t, n, "shout-6").GetOutput().GetValue(); got != `"TWO"` {
		t.Fatalf("output %s", got)
	}
}

func TestNonJSONResultIsRefusedAndTheLeaseStays(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteApp)
	w := connect(t, n, &pb.GetWorkItemsRequest{})
	startShout(t, n, "shout-7")
	item := w.next()
	wantCode(t, complete(t, n, item, `not json`), codes.InvalidArgument)
	if err := complete(t, n, item, `"OK"`); err != nil {
		t.Fatal(err)
	}
	if err := complete(t, n, w.next(), `"OK2"`); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, n, "shout-7")
}

func TestSetRemoteActivitiesAfterStartIsRefused(t *testing.T) {
	rt, err := durable.Open(durable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := sidecar.New(rt, sidecar.Options{}); err == nil {
		t.Fatal("a sidecar attached to a started runtime")
	}
}

func TestSeveralWorkersShareTheLoad(t *testing.T) {
	n := startNode(t, "", sidecarOpts(), remoteApp)
	a := connect(t, n, &pb.GetWorkItemsRequest{})
	b := connect(t, n, &pb.GetWorkItemsRequest{})
	startShout(t, n, "share-1")
	startShout(t, n, "share-2")
	fromA, fromB := a.next(), b.next() // one each: the least loaded worker gets the next item
	if fromA.GetActivityRequest().GetOrchestrationInstance().GetInstanceId() == fromB.GetActivityRequest().GetOrchestrationInstance().GetInstanceId() {
		t.Fatalf("both workers got work of one instance: %v, %v", fromA, fromB)
	}
	for _, item := range []*pb.WorkItem{fromA, fromB} {
		if err := complete(t, n, item, `"x"`); err != nil {
			t.Fatal(err)
		}
	}
}

package sidecar

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// Work items and their leases.
//
// An activity that a remote worker serves runs inside durable's activity
// path: the instance scheduled it in a committed turn (its pending-task
// index entry is on disk), the node's activity actor calls the runtime's
// remote activity function, which is dispatcher.run here, and run waits for
// a worker's completion. Its result goes back to the instance like a Go
// activity's, and is committed in the instance's next turn. So nothing is
// durable in the dispatcher itself: after a restart the pending-task index
// dispatches the activity again and it is queued again. Orchestration
// turns (dispatcher.runTurn) and entity batches (dispatcher.runEntityBatch,
// entities.go) are the same: nothing of them is committed until a worker's
// answer is, and after a restart the instance (from its journal, inbox and
// indexes) or the entity (from its inbox) hands them out again.
//
// Each dispatch of an item to a worker is a lease, named by the completion
// token "<item>.<lease>". One worker holds an item at a time. The lease
// ends with the worker's completion or abandonment, with the worker's
// stream (a disconnect), or after LeaseTimeout; then the item is queued
// again under a new lease number, and a completion carrying an older
// token is rejected as stale (FailedPrecondition), so a result is taken
// from one worker only.

// dispatcher queues work items (activities, orchestration turns, entity
// batches) and leases them to workers.
type dispatcher struct {
	leaseTimeout time.Duration

	mu      sync.Mutex
	nextID  uint64
	prefix  string               // random per dispatcher, so tokens of another run are unknown
	items   map[uint64]*workItem // queued or leased
	queue   *list.List           // of *workItem, oldest first
	workers map[*workerConn]struct{}
	closed  bool
	// Orchestrator names the workers serve, for Client.Start: those named
	// in a worker's filters, or every name once a worker without filters
	// has connected (since this dispatcher began); entity names
	// (lower-cased) likewise, for the Client's entity calls.
	announced         map[string]bool
	announcedEntities map[string]bool
	anyName           bool
}

// workKind says what a work item runs.
type workKind int

const (
	activityWork workKind = iota
	orchestratorWork
	entityWork
	workKinds
)

// workItem is one activity run or orchestration turn waiting for a remote
// worker.
type workItem struct {
	id    uint64
	kind  workKind
	name  string // the activity's or orchestrator's
	item  func(token string) *pb.WorkItem
	lease uint64 // number of the current or last lease
	// holder is the worker of the current lease (nil while queued);
	// elem is the item's place in the queue while queued.
	holder *workerConn
	elem   *list.Element
	expiry *time.Timer
	done   chan outcome // buffered 1: the outcome, sent once
	// turn is the orchestration turn of an orchestrator item, which its
	// completion's actions are read against.
	turn *durable.RemoteTurn
	// batch is the entity batch of an entity item, which its completion's
	// results are read against.
	batch *durable.RemoteEntityBatch
}

// outcome is what a worker answered: an activity's output or failure, or
// an orchestration turn's result, or an entity batch's.
type outcome struct {
	output []byte
	err    error
	result *durable.RemoteResult
	entity *durable.RemoteEntityResult
}

// workerConn is one connected GetWorkItems stream.
type workerConn struct {
	send     chan *pb.WorkItem // buffered to the capacities' sum: assignment never blocks
	capacity [workKinds]int
	held     [workKinds]int
	// names limits, per kind, the names this worker gets (nil: every name).
	names [workKinds]map[string]bool
}

// defaultWorkerCapacity bounds the activity items one worker holds at once
// when it does not say (maxConcurrentActivityWorkItems 0).
const defaultWorkerCapacity = 100

func newDispatcher(leaseTimeout time.Duration) *dispatcher {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &dispatcher{
		leaseTimeout: leaseTimeout,
		prefix:       hex.EncodeToString(b[:]),
		items:        map[uint64]*workItem{},
		queue:        list.New(),
		workers:      map[*workerConn]struct{}{},
		announced:    map[string]bool{},

		announcedEntities: map[string]bool{},
	}
}

// known reports whether a worker serves orchestrator name.
func (d *dispatcher) known(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.anyName || d.announced[name]
}

// run is the runtime's remote activity function: it queues the activity
// for the workers and waits for its outcome or for ctx (the instance's
// termination, the node's shutdown), which withdraws it.
func (d *dispatcher) run(ctx context.Context, name string, input []byte) ([]byte, error) {
	info, _ := orchestration.ActivityInfoFrom(ctx)
	req := &pb.ActivityRequest{
		Name:                  name,
		Input:                 str(input),
		OrchestrationInstance: &pb.OrchestrationInstance{InstanceId: info.InstanceID},
		TaskId:                int32(info.TaskID),
	}
	it := &workItem{kind: activityWork, name: name, item: func(token string) *pb.WorkItem {
		return &pb.WorkItem{Request: &pb.WorkItem_ActivityRequest{ActivityRequest: req}, CompletionToken: token}
	}}
	out, err := d.await(ctx, it)
	if err != nil {
		return nil, fmt.Errorf("activity %q withdrawn from the workers: %w", name, err)
	}
	return out.output, out.err
}

// runTurn is the runtime's remote orchestrator function: it queues the
// turn for the workers and calls done with the worker's answer.
func (d *dispatcher) runTurn(ctx context.Context, turn durable.RemoteTurn, done func(*durable.RemoteResult, error)) {
	requests := entityRequests(turn.Past, turn.New)
	req := &pb.OrchestratorRequest{
		InstanceId:  turn.InstanceID,
		ExecutionId: optional(turn.ExecutionID),
		PastEvents:  turnEventsToProto(turn.Past, requests),
		NewEvents:   turnEventsToProto(turn.New, requests),
	}
	it := &workItem{kind: orchestratorWork, name: turn.Name, turn: &turn, item: func(token string) *pb.WorkItem {
		return &pb.WorkItem{Request: &pb.WorkItem_OrchestratorRequest{OrchestratorRequest: req}, CompletionToken: token}
	}}
	go func() {
		out, err := d.await(ctx, it)
		if err != nil {
			done(nil, err)
			return
		}
		done(out.result, nil)
	}()
}

// await queues it and waits for its outcome, or for ctx, which withdraws
// it.
func (d *dispatcher) await(ctx context.Context, it *workItem) (outcome, error) {
	it.done = make(chan outcome, 1)
	d.mu.Lock()
	d.nextID++
	it.id = d.nextID
	d.items[it.id] = it
	it.elem = d.queue.PushBack(it)
	d.assignLocked()
	d.mu.Unlock()

	select {
	case out := <-it.done:
		return out, nil
	case <-ctx.Done():
		d.mu.Lock()
		d.dropLocked(it)
		d.mu.Unlock()
		return outcome{}, ctx.Err()
	}
}

// dropLocked forgets an item: out of the queue, its lease ended.
func (d *dispatcher) dropLocked(it *workItem) {
	if _, ok := d.items[it.id]; !ok {
		return
	}
	delete(d.items, it.id)
	if it.elem != nil {
		d.queue.Remove(it.elem)
		it.elem = nil
	}
	d.endLeaseLocked(it)
}

// endLeaseLocked ends the item's current lease, if it has one.
func (d *dispatcher) endLeaseLocked(it *workItem) {
	if it.expiry != nil {
		it.expiry.Stop()
		it.expiry = nil
	}
	if it.holder != nil {
		it.holder.held[it.kind]--
		it.holder = nil
	}
}

// requeueLocked ends the lease and queues the item again, first in line
// (it has waited longest).
func (d *dispatcher) requeueLocked(it *workItem) {
	d.endLeaseLocked(it)
	it.elem = d.queue.PushFront(it)
	d.assignLocked()
}

// assignLocked leases queued items to workers with room, in queue order,
// spreading them over the workers (the least loaded first).
func (d *dispatcher) assignLocked() {
	if d.closed {
		return
	}
	for e := d.queue.Front(); e != nil; {
		next := e.Next()
		it := e.Value.(*workItem)
		if w := d.pickLocked(it.kind, it.name); w != nil && d.leaseLocked(it, w) {
			d.queue.Remove(e)
			it.elem = nil
		}
		e = next
	}
}

func (d *dispatcher) pickLocked(kind workKind, name string) *workerConn {
	var best *workerConn
	for w := range d.workers {
		if w.held[kind] >= w.capacity[kind] || (w.names[kind] != nil && !w.names[kind][name]) {
			continue
		}
		if best == nil || w.held[kind] < best.held[kind] {
			best = w
		}
	}
	return best
}

// leaseLocked hands the item to w under a new lease; false if w's send
// buffer is full (items of ended leases can still sit in it), which never
// blocks the dispatcher.
func (d *dispatcher) leaseLocked(it *workItem, w *workerConn) bool {
	lease := it.lease + 1
	select {
	case w.send <- it.item(d.token(it.id, lease)):
	default:
		return false
	}
	it.lease, it.holder = lease, w
	w.held[it.kind]++
	it.expiry = time.AfterFunc(d.leaseTimeout, func() { d.expire(it.id, lease) })
	return true
}

// expire ends a lease its worker held past LeaseTimeout.
func (d *dispatcher) expire(id, lease uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if it, ok := d.items[id]; ok && it.lease == lease && it.holder != nil {
		it.expiry = nil
		d.requeueLocked(it)
	}
}

func (d *dispatcher) token(id, lease uint64) string {
	return d.prefix + "." + strconv.FormatUint(id, 10) + "." + strconv.FormatUint(lease, 10)
}

// leasedLocked finds the item of kind a completion token names and checks
// that its lease is the current one.
func (d *dispatcher) leasedLocked(kind workKind, token string) (*workItem, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, invalid("malformed completion token %q", token)
	}
	id, err1 := strconv.ParseUint(parts[1], 10, 64)
	lease, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, invalid("malformed completion token %q", token)
	}
	it, ok := d.items[id]
	if parts[0] != d.prefix || !ok || it.kind != kind {
		return nil, status.Errorf(codes.NotFound, "no work item for completion token %q: it was completed, withdrawn, or leased before this node restarted", token)
	}
	if it.lease != lease || it.holder == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "stale completion token %q: its lease ended (the worker disconnected, abandoned it or missed its deadline) and the work item was dispatched again", token)
	}
	return it, nil
}

// complete delivers a worker's outcome for the item its token leases;
// read makes it from the item (an error refuses the completion, and the
// lease stays).
func (d *dispatcher) complete(kind workKind, token string, read func(it *workItem) (outcome, error)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	it, err := d.leasedLocked(kind, token)
	if err != nil {
		return err
	}
	out, err := read(it)
	if err != nil {
		return err
	}
	d.dropLocked(it)
	it.done <- out
	d.assignLocked()
	return nil
}

// abandon gives a leased item back to the queue.
func (d *dispatcher) abandon(kind workKind, token string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	it, err := d.leasedLocked(kind, token)
	if err != nil {
		return err
	}
	d.requeueLocked(it)
	return nil
}

// connect adds a worker; disconnect removes it and queues what it held.
func (d *dispatcher) connect(w *workerConn) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return status.Error(codes.Unavailable, "the sidecar is shutting down")
	}
	d.workers[w] = struct{}{}
	if w.names[orchestratorWork] == nil {
		d.anyName = true
	}
	for name := range w.names[orchestratorWork] {
		d.announced[name] = true
	}
	for name := range w.names[entityWork] {
		d.announcedEntities[name] = true
	}
	d.assignLocked()
	return nil
}

func (d *dispatcher) disconnect(w *workerConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.workers, w)
	for _, it := range d.items {
		if it.holder == w {
			d.requeueLocked(it)
		}
	}
}

// close stops assigning; streams end on the server's closed channel.
func (d *dispatcher) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
}

// GetWorkItems streams work items to a worker until it disconnects or the
// server closes, with a health ping on connection and every PingInterval.
// The worker's filters (workItemFilters) limit the activities,
// orchestrators and entities it gets; without filters it gets every one
// no Go code serves.
func (s *Server) GetWorkItems(req *pb.GetWorkItemsRequest, stream pb.TaskHubSidecarService_GetWorkItemsServer) error {
	w := &workerConn{}
	for kind, n := range map[workKind]int32{activityWork: req.GetMaxConcurrentActivityWorkItems(), orchestratorWork: req.GetMaxConcurrentOrchestrationWorkItems(), entityWork: req.GetMaxConcurrentEntityWorkItems()} {
		if n < 0 {
			return invalid("GetWorkItems: a negative maxConcurrent work items (%d)", n)
		}
		if n == 0 {
			n = defaultWorkerCapacity
		}
		w.capacity[kind] = int(n)
	}
	w.send = make(chan *pb.WorkItem, w.capacity[activityWork]+w.capacity[orchestratorWork]+w.capacity[entityWork])
	if f := req.GetWorkItemFilters(); f != nil {
		w.names[activityWork], w.names[orchestratorWork], w.names[entityWork] = map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, e := range f.GetEntities() {
			w.names[entityWork][strings.ToLower(e.GetName())] = true
		}
		for _, a := range f.GetActivities() {
			w.names[activityWork][a.GetName()] = true
		}
		for _, o := range f.GetOrchestrations() {
			w.names[orchestratorWork][o.GetName()] = true
		}
	}
	if err := s.work.connect(w); err != nil {
		return err
	}
	defer s.work.disconnect(w)
	// A first ping at once tells the worker its stream is registered.
	if err := stream.Send(&pb.WorkItem{Request: &pb.WorkItem_HealthPing{HealthPing: &pb.HealthPing{}}}); err != nil {
		return err
	}
	ping := time.NewTicker(s.opts.PingInterval)
	defer ping.Stop()
	for {
		var item *pb.WorkItem
		select {
		case item = <-w.send:
		case <-ping.C:
			item = &pb.WorkItem{Request: &pb.WorkItem_HealthPing{HealthPing: &pb.HealthPing{}}}
		case <-stream.Context().Done():
			return nil
		case <-s.closed:
			return status.Error(codes.Unavailable, "the sidecar is shutting down")
		}
		if err := stream.Send(item); err != nil {
			return err // disconnect: what it held is dispatched again
		}
	}
}

// CompleteActivityTask takes a worker's result or failure for the work
// item its completion token leases. A result that is not JSON is refused
// and the lease stays, so the worker can answer again.
func (s *Server) CompleteActivityTask(ctx context.Context, res *pb.ActivityResponse) (*pb.CompleteTaskResponse, error) {
	var out outcome
	if f := res.GetFailureDetails(); f != nil {
		out.err = failureFromProto(f)
	} else if r := payload(res.GetResult()); r != nil {
		if !json.Valid(r) {
			return nil, invalid("CompleteActivityTask: result is not valid JSON")
		}
		out.output = r
	}
	if err := s.work.complete(activityWork, res.GetCompletionToken(), func(*workItem) (outcome, error) { return out, nil }); err != nil {
		return nil, err
	}
	return &pb.CompleteTaskResponse{}, nil
}

// AbandonTaskActivityWorkItem gives a leased activity back: it is
// dispatched again, to this worker or another.
func (s *Server) AbandonTaskActivityWorkItem(ctx context.Context, req *pb.AbandonActivityTaskRequest) (*pb.AbandonActivityTaskResponse, error) {
	if err := s.work.abandon(activityWork, req.GetCompletionToken()); err != nil {
		return nil, err
	}
	return &pb.AbandonActivityTaskResponse{}, nil
}

// CompleteOrchestratorTask takes a worker's actions for the orchestration
// turn its completion token leases; the instance commits them with the
// turn's new events in one batch. A malformed answer is refused and the
// lease stays.
func (s *Server) CompleteOrchestratorTask(ctx context.Context, res *pb.OrchestratorResponse) (*pb.CompleteTaskResponse, error) {
	err := s.work.complete(orchestratorWork, res.GetCompletionToken(), func(it *workItem) (outcome, error) {
		result, err := resultFromProto(it.turn, res)
		return outcome{result: result}, err
	})
	if err != nil {
		return nil, err
	}
	return &pb.CompleteTaskResponse{}, nil
}

// AbandonTaskOrchestratorWorkItem gives a leased orchestration turn back:
// it is dispatched again, to this worker or another.
func (s *Server) AbandonTaskOrchestratorWorkItem(ctx context.Context, req *pb.AbandonOrchestrationTaskRequest) (*pb.AbandonOrchestrationTaskResponse, error) {
	if err := s.work.abandon(orchestratorWork, req.GetCompletionToken()); err != nil {
		return nil, err
	}
	return &pb.AbandonOrchestrationTaskResponse{}, nil
}

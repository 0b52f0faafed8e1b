package actors

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
)

// seamRegistry is a Registry of a few functions for the seam's tests.
type seamRegistry struct {
	orchestrators map[string]orchestration.Orchestrator
	entities      map[string]orchestration.EntityFunc
}

func (r *seamRegistry) Orchestrator(name string) (orchestration.Orchestrator, bool) {
	fn, ok := r.orchestrators[name]
	return fn, ok
}
func (r *seamRegistry) Activity(string) (ActivityFunc, bool) { return nil, false }
func (r *seamRegistry) Entity(name string) (orchestration.EntityFunc, bool) {
	fn, ok := r.entities[strings.ToLower(name)]
	return fn, ok
}

// tally is the entity of the seam's tests.
type tally struct{ N int }

func (t *tally) Add(n int) { t.N += n }

func newSeamRegistry(t testing.TB) *seamRegistry {
	t.Helper()
	tallyFn, err := orchestration.EntityFromStruct[tally]()
	if err != nil {
		t.Fatal(err)
	}
	return &seamRegistry{
		orchestrators: map[string]orchestration.Orchestrator{
			// Approve waits for event "Go" and returns its payload.
			"Approve": func(ctx *orchestration.Context) (any, error) {
				return orchestration.Await[string](ctx.WaitForExternalEvent("Go"))
			},
		},
		entities: map[string]orchestration.EntityFunc{"tally": tallyFn},
	}
}

// startSeamNode runs a node on a fresh in-memory hub of four partitions.
func startSeamNode(t testing.TB) *Node {
	t.Helper()
	hub, err := persistence.Open(persistence.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	n, err := StartNode(Config{Hub: hub, Registry: newSeamRegistry(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.Shutdown(context.Background())
		_ = hub.Close()
	})
	return n
}

// pidPartitions reaches n's partitions the way another process would: by
// PIDs made from the node's address and the partition actors' names, with
// every request and answer a protobuf message.
func pidPartitions(n *Node) *PIDPartitions {
	c := &PIDPartitions{Root: n.system.Root, Timeout: 10 * time.Second}
	for i := 0; i < n.Count(); i++ {
		c.PIDs = append(c.PIDs, actor.NewPID(n.system.Address(), PartitionActorName(i)))
	}
	return c
}

func startReq(id, name string, input []byte, key string) *seam.Request {
	return &seam.Request{IdempotencyKey: key, Op: &seam.Request_StartInstance{StartInstance: &seam.StartInstance{InstanceId: id, Name: name, Input: input}}}
}

func raiseReq(id, name string, payload []byte, key string) *seam.Request {
	return &seam.Request{IdempotencyKey: key, Op: &seam.Request_RaiseEvent{RaiseEvent: &seam.RaiseEvent{InstanceId: id, Name: name, Payload: payload}}}
}

func getReq(id string) *seam.Request {
	return &seam.Request{Op: &seam.Request_GetInstance{GetInstance: &seam.GetInstance{InstanceId: id}}}
}

func waitReq(id string) *seam.Request {
	return &seam.Request{Op: &seam.Request_WaitForInstance{WaitForInstance: &seam.WaitForInstance{InstanceId: id}}}
}

func signalReq(entity, op string, input []byte, key string) *seam.Request {
	return &seam.Request{IdempotencyKey: key, Op: &seam.Request_SignalEntity{SignalEntity: &seam.SignalEntity{EntityId: entity, Operation: op, Input: input}}}
}

func call(t *testing.T, p seam.Partitions, req *seam.Request) *seam.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := p.Call(ctx, req)
	if err != nil {
		t.Fatalf("%v: %v", req, err)
	}
	return resp
}

// The seam, both ways: the node in-process and the partitions' PIDs.
func seamImplementations(t *testing.T) map[string]func(*Node) seam.Partitions {
	return map[string]func(*Node) seam.Partitions{
		"in-process": func(n *Node) seam.Partitions { return n },
		"by PID":     func(n *Node) seam.Partitions { return pidPartitions(n) },
	}
}

func TestSeamServesAnInstanceFromStartToItsEnd(t *testing.T) {
	for name, via := range seamImplementations(t) {
		t.Run(name, func(t *testing.T) {
			n := startSeamNode(t)
			p := via(n)
			call(t, p, startReq("order-1", "Approve", nil, "k-start"))

			// A subscription made before the end is answered by the end.
			waited := make(chan *seam.Response, 1)
			go func() {
				resp, err := p.Call(context.Background(), waitReq("order-1"))
				if err != nil {
					t.Error(err)
				}
				waited <- resp
			}()
			if st := call(t, p, getReq("order-1")).GetInstance(); st.GetRuntimeStatus() != seam.RuntimeStatus_RUNTIME_STATUS_RUNNING {
				t.Fatalf("status %v, want running", st.GetRuntimeStatus())
			}
			call(t, p, raiseReq("order-1", "Go", []byte(`"yes"`), "k-raise"))
			var st *seam.InstanceStatus
			select {
			case resp := <-waited:
				st = resp.GetInstance()
			case <-time.After(10 * time.Second):
				t.Fatal("the wait was not answered")
			}
			if st.GetRuntimeStatus() != seam.RuntimeStatus_RUNTIME_STATUS_COMPLETED || string(st.GetOutput()) != `"yes"` {
				t.Fatalf("final status %v output %s", st.GetRuntimeStatus(), st.GetOutput())
			}

			events := call(t, p, &seam.Request{Op: &seam.Request_GetHistory{GetHistory: &seam.GetHistory{InstanceId: "order-1"}}}).GetHistoryEvents()
			var kinds []history.Type
			for _, b := range events {
				ev, err := history.Unmarshal(b)
				if err != nil {
					t.Fatal(err)
				}
				kinds = append(kinds, ev.Type)
			}
			if len(kinds) == 0 || kinds[len(kinds)-1] != history.ExecutionCompleted {
				t.Fatalf("history %v does not end with the completion", kinds)
			}

			found := 0
			for i := 0; i < p.Count(); i++ {
				resp := call(t, p, &seam.Request{Op: &seam.Request_ListInstances{ListInstances: &seam.ListInstances{Partition: int32(i), Filter: &seam.InstanceFilter{}, Limit: 10}}})
				found += len(resp.GetInstances())
			}
			if found != 1 {
				t.Fatalf("the partitions list %d instances, want 1", found)
			}
		})
	}
}

func TestSeamRetriedWritesHaveOneEffect(t *testing.T) {
	for name, via := range seamImplementations(t) {
		t.Run(name, func(t *testing.T) {
			n := startSeamNode(t)
			n.keepKeys = true // as in a cluster, where in-process requests are retried too
			p := via(n)
			// A start retried with its key is the same start, not a
			// conflict with itself.
			call(t, p, startReq("order-2", "Approve", nil, "k-1"))
			call(t, p, startReq("order-2", "Approve", nil, "k-1"))
			if _, err := p.Call(context.Background(), startReq("order-2", "Approve", nil, "k-other")); !errors.Is(err, seam.ErrInstanceExists) {
				t.Fatalf("a second start with another key: %v, want ErrInstanceExists", err)
			}
			// An entity signal retried with its key is applied once.
			for range 3 {
				call(t, p, signalReq("@tally@a", "Add", []byte("5"), "k-signal"))
			}
			call(t, p, signalReq("@tally@a", "Add", []byte("1"), "k-signal-2"))
			state := call(t, p, &seam.Request{Op: &seam.Request_GetEntity{GetEntity: &seam.GetEntity{EntityId: "@tally@a"}}}).GetEntity()
			var got tally
			if err := json.Unmarshal(state.GetState(), &got); err != nil || got.N != 6 {
				t.Fatalf("tally %s (%v), want 6: the retried signal was applied more than once", state.GetState(), err)
			}
			// A raise retried with its key is recorded once; the instance
			// then completes with the first payload.
			call(t, p, raiseReq("order-2", "Other", []byte(`1`), "k-raise"))
			call(t, p, raiseReq("order-2", "Other", []byte(`1`), "k-raise"))
			raised := 0
			for _, b := range call(t, p, &seam.Request{Op: &seam.Request_GetHistory{GetHistory: &seam.GetHistory{InstanceId: "order-2"}}}).GetHistoryEvents() {
				if ev, _ := history.Unmarshal(b); ev != nil && ev.Type == history.EventRaised {
					raised++
				}
			}
			if raised != 1 {
				t.Fatalf("%d EventRaised events for one raise retried, want 1", raised)
			}
			// A terminate retried after its effect succeeds again instead
			// of reporting the instance completed.
			term := &seam.Request{IdempotencyKey: "k-term", Op: &seam.Request_ControlInstance{ControlInstance: &seam.ControlInstance{InstanceId: "order-2", Op: seam.ControlOp_CONTROL_OP_TERMINATE, Reason: "test"}}}
			call(t, p, term)
			call(t, p, proto.Clone(term).(*seam.Request))
		})
	}
}

// On a single node a request served in-process is never sent twice, so
// its key is not recorded: the record does not grow with keys, and a
// second start with the same key is an ordinary second start. By message
// the key is recorded.
func TestSeamRecordsKeysOnlyWhereARetryCanHappen(t *testing.T) {
	n := startSeamNode(t)
	call(t, n, startReq("local", "Approve", nil, "k-local"))
	if _, err := n.Call(context.Background(), startReq("local", "Approve", nil, "k-local")); !errors.Is(err, seam.ErrInstanceExists) {
		t.Fatalf("in-process, a second start with the same key: %v, want ErrInstanceExists", err)
	}
	p := pidPartitions(n)
	call(t, p, startReq("remote", "Approve", nil, "k-remote"))
	call(t, p, startReq("remote", "Approve", nil, "k-remote")) // the same request again
}

func TestSeamErrorsKeepTheirIdentityAcrossPIDs(t *testing.T) {
	n := startSeamNode(t)
	p := pidPartitions(n)
	tests := []struct {
		name string
		req  *seam.Request
		want error
	}{
		{"unknown instance", getReq("nobody"), seam.ErrInstanceNotFound},
		{"unknown orchestrator", startReq("x", "NoSuch", nil, "k"), seam.ErrOrchestratorNotRegistered},
		{"raise to nobody", raiseReq("nobody", "Go", nil, "k2"), seam.ErrInstanceNotFound},
		{"entity without state", &seam.Request{Op: &seam.Request_GetEntity{GetEntity: &seam.GetEntity{EntityId: "@tally@none"}}}, seam.ErrEntityNotFound},
		{"not an entity id", signalReq("tally", "Add", nil, "k3"), seam.ErrInvalidInput},
		{"no operation", &seam.Request{}, seam.ErrInvalidInput},
		{"purge of live statuses", &seam.Request{Op: &seam.Request_PurgeInstances{PurgeInstances: &seam.PurgeInstances{Filter: &seam.InstanceFilter{Statuses: []seam.RuntimeStatus{seam.RuntimeStatus_RUNTIME_STATUS_RUNNING}}}}}, seam.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Call(context.Background(), tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSeamRequestAtTheWrongPartitionIsRefused(t *testing.T) {
	n := startSeamNode(t)
	req := getReq("order-9")
	want, _ := seam.PartitionOf(req, n.Count())
	wrong := actor.NewPID(n.system.Address(), PartitionActorName((want+1)%n.Count()))
	resp, err := n.system.Root.RequestFuture(wrong, req, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.(*seam.Response).GetError().Err(); !errors.Is(err, seam.ErrWrongPartition) {
		t.Fatalf("got %v, want ErrWrongPartition", err)
	}
}

func TestSeamWaitSubscriptionExpiresAndIsRenewed(t *testing.T) {
	n := startSeamNode(t)
	call(t, n, startReq("slow", "Approve", nil, "k"))
	// The partition ends a subscription that runs out, with an error the
	// caller knows to renew on.
	_, err := n.Call(context.Background(), &seam.Request{Op: &seam.Request_WaitForInstance{WaitForInstance: &seam.WaitForInstance{InstanceId: "slow", TimeoutMillis: 20}}})
	if !errors.Is(err, seam.ErrWaitExpired) {
		t.Fatalf("got %v, want ErrWaitExpired", err)
	}
	// PIDPartitions renews short subscriptions until the end comes.
	p := pidPartitions(n)
	p.Timeout = 100 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		resp, err := p.Call(context.Background(), waitReq("slow"))
		if err == nil && resp.GetInstance().GetRuntimeStatus() != seam.RuntimeStatus_RUNTIME_STATUS_COMPLETED {
			err = errors.New("not completed")
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // several subscriptions expire meanwhile
	call(t, n, raiseReq("slow", "Go", []byte(`"ok"`), "k-go"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the renewed wait never ended")
	}
	if left := len(n.hostedPartition(n.cfg.Hub.PartitionOf("slow")).waiters.byID); left != 0 {
		t.Fatalf("%d subscriptions left behind", left)
	}
}

func TestPartitionOfRoutesByTargetOrByNamedPartition(t *testing.T) {
	tests := []struct {
		name    string
		req     *seam.Request
		want    int
		wantErr error
	}{
		{"instance id", getReq("abc"), persistence.PartitionOf("abc", 4), nil},
		{"entity id", signalReq("@tally@k", "Add", nil, ""), persistence.PartitionOf("@tally@k", 4), nil},
		{"listing", &seam.Request{Op: &seam.Request_ListInstances{ListInstances: &seam.ListInstances{Partition: 3}}}, 3, nil},
		{"listing out of range", &seam.Request{Op: &seam.Request_ListEntities{ListEntities: &seam.ListEntities{Partition: 4}}}, 0, seam.ErrInvalidInput},
		{"negative partition", &seam.Request{Op: &seam.Request_PurgeInstances{PurgeInstances: &seam.PurgeInstances{Partition: -1}}}, 0, seam.ErrInvalidInput},
		{"no op", &seam.Request{}, 0, seam.ErrInvalidInput},
		{"no id", getReq(""), 0, seam.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seam.PartitionOf(tt.req, 4)
			if !errors.Is(err, tt.wantErr) || (err == nil && got != tt.want) {
				t.Fatalf("got %d, %v; want %d, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzServeRequest: whatever bytes decode as a request, the node answers
// with a response or an error, never a panic.
func FuzzServeRequest(f *testing.F) {
	for _, req := range []*seam.Request{
		startReq("a", "Approve", []byte(`1`), "k"), raiseReq("a", "Go", []byte(`"x"`), "k2"), getReq("a"), waitReq("a"),
		signalReq("@tally@a", "Add", []byte("1"), "k3"),
		{Op: &seam.Request_ListInstances{ListInstances: &seam.ListInstances{Partition: 1, Limit: 5, After: &seam.ListCursor{CreatedUnixNano: 5, InstanceId: "z"}}}},
		{Op: &seam.Request_ListEntities{ListEntities: &seam.ListEntities{Partition: 2, Limit: 5, Name: "tally"}}},
		{Op: &seam.Request_ControlInstance{ControlInstance: &seam.ControlInstance{InstanceId: "a", Op: seam.ControlOp_CONTROL_OP_REWIND}}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	n := startSeamNodeF(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var req seam.Request
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		if w := req.GetWaitForInstance(); w != nil {
			w.TimeoutMillis = 1 // a wait must not outlive the case
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = n.Call(ctx, &req)
	})
}

func startSeamNodeF(f *testing.F) *Node {
	hub, err := persistence.Open(persistence.Options{Partitions: 4})
	if err != nil {
		f.Fatal(err)
	}
	reg := &seamRegistry{orchestrators: map[string]orchestration.Orchestrator{
		"Approve": func(ctx *orchestration.Context) (any, error) {
			return orchestration.Await[string](ctx.WaitForExternalEvent("Go"))
		},
	}}
	n, err := StartNode(Config{Hub: hub, Registry: reg})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		_ = n.Shutdown(context.Background())
		_ = hub.Close()
	})
	return n
}

// BenchmarkSeamSignal compares the two ways a request reaches a partition
// on this node: Node.Call's in-process shortcut (a channel reply, reads on
// the caller's goroutine) and a *seam.Request sent to the partition actor's
// PID with a protoactor future, as a caller in another process does. Many
// callers at once, as under load.
func BenchmarkSeamSignal(b *testing.B) {
	for _, via := range []string{"in-process", "by PID"} {
		b.Run(via, func(b *testing.B) {
			n := startSeamNode(b)
			var p seam.Partitions = n
			if via == "by PID" {
				p = pidPartitions(n)
			}
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					req := signalReq("@tally@"+strconv.Itoa(i%64), "Add", []byte("1"), seam.NewIdempotencyKey())
					if _, err := p.Call(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func TestAStartIsFreshOnlyWhenItsIDWasGeneratedAndRequestsAreNeverSentTwice(t *testing.T) {
	tests := []struct {
		name      string
		freshID   bool
		keepKey   bool
		wantFresh bool
	}{
		{"generated id, single node", true, false, true},
		{"generated id, cluster (requests retried)", true, true, false},
		{"caller's id", false, false, false},
		{"caller's id, cluster", false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &seam.Request{IdempotencyKey: "k", Op: &seam.Request_StartInstance{StartInstance: &seam.StartInstance{
				InstanceId: "i", Name: "O", FreshId: tt.freshID}}}
			msg, err := writeMessage(req, make(chanReply, 1), tt.keepKey)
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.(*startInstance).fresh; got != tt.wantFresh {
				t.Fatalf("fresh %v, want %v", got, tt.wantFresh)
			}
		})
	}
}

package actors

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
)

// Everything the tests of this package do to a Node goes through this
// file: building one, starting and stopping it, the requests made to it,
// and the few of its parts a test looks at. When the Node's Config or
// request API changes, this file is the one to follow it.

// nodeOptions are the Config fields the tests set; zero values take the
// Node's defaults.
type nodeOptions struct {
	idleTimeout   time.Duration
	maxActivities int
	now           func() time.Time
}

// openTestHub opens an in-memory hub of the given number of partitions,
// closed when the test ends (after the nodes started on it stop).
func openTestHub(t *testing.T, partitions int) *persistence.Hub {
	t.Helper()
	hub, err := persistence.Open(persistence.Options{Partitions: partitions, Logger: newTestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := hub.Close(); err != nil {
			t.Errorf("close hub: %v", err)
		}
	})
	return hub
}

// startTestNode starts a node on hub, shut down when the test ends unless
// the test stops it first.
func startTestNode(t *testing.T, hub *persistence.Hub, reg Registry, opts nodeOptions) *Node {
	t.Helper()
	n, err := StartNode(Config{
		Hub:                     hub,
		Registry:                reg,
		Logger:                  newTestLogger(t),
		IdleTimeout:             opts.idleTimeout,
		MaxConcurrentActivities: opts.maxActivities,
		Now:                     opts.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopTestNode(t, n) })
	return n
}

// stopTestNode shuts n down, waiting for its actors to stop; stopping a
// stopped node does nothing.
func stopTestNode(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Errorf("shut down node: %v", err)
	}
}

// startTestInstance starts instance id of orchestrator name with input encoded
// as JSON (none if input is nil) and returns once its start is durable.
func startTestInstance(t *testing.T, n *Node, id, name string, input any) {
	t.Helper()
	var raw []byte
	if input != nil {
		var err error
		if raw, err = json.Marshal(input); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	if _, err := n.Call(ctx, &seam.Request{IdempotencyKey: seam.NewIdempotencyKey(), Op: &seam.Request_StartInstance{StartInstance: &seam.StartInstance{InstanceId: id, Name: name, Input: raw}}}); err != nil {
		t.Fatalf("start instance %s: %v", id, err)
	}
}

// raiseTestEvent raises event name (no payload) to instance id and returns once
// it is durable.
func raiseTestEvent(t *testing.T, n *Node, id, name string) {
	t.Helper()
	if err := raiseEventError(t, n, id, name); err != nil {
		t.Fatalf("raise event %s to %s: %v", name, id, err)
	}
}

// raiseEventError raises event name to instance id and returns the node's
// answer.
func raiseEventError(t *testing.T, n *Node, id, name string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	_, err := n.Call(ctx, &seam.Request{IdempotencyKey: seam.NewIdempotencyKey(), Op: &seam.Request_RaiseEvent{RaiseEvent: &seam.RaiseEvent{InstanceId: id, Name: name}}})
	return err
}

// terminateTestInstance terminates instance id and returns once that is
// durable.
func terminateTestInstance(t *testing.T, n *Node, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	if _, err := n.Call(ctx, &seam.Request{IdempotencyKey: seam.NewIdempotencyKey(), Op: &seam.Request_ControlInstance{ControlInstance: &seam.ControlInstance{
		InstanceId: id, Op: seam.ControlOp_CONTROL_OP_TERMINATE, Reason: "test"}}}); err != nil {
		t.Fatalf("terminate %s: %v", id, err)
	}
}

// actorsInMemory counts the processes n's actor system has registered.
func actorsInMemory(n *Node) int { return n.Actors() }

// gateOf returns n's activity gate.
func gateOf(n *Node) *activityGate { return n.gate }

// nodeWithIdleTimeout is a Node that is never started, for the actors of
// these tests that only read its IdleTimeout.
func nodeWithIdleTimeout(d time.Duration) *Node {
	return &Node{cfg: Config{IdleTimeout: d}}
}

package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/seam"
)

// routed is a message the partition forwards to the actor of one instance.
type routed interface{ instanceID() string }

// wake activates an instance that has pending work.
type wake struct{ id string }

// startRequest asks for a new instance.
type startRequest struct {
	InstanceID string
	Name       string
	Input      []byte
	// Version is the orchestrator version to run when PickVersion is
	// set; otherwise the instance starts on the default version.
	Version     string
	PickVersion bool
	// Set when a parent orchestration starts this instance as its
	// sub-orchestration.
	ParentInstanceID  string
	ParentExecutionID string
	ParentTaskID      int64
	// TraceParent is the W3C trace context the instance's spans join.
	TraceParent string
}

// startInstance asks an instance actor to create a new execution. reply is
// nil when a parent starts its sub-orchestration: failures then go back to
// the parent as the sub-orchestration's failure. key is the client's
// idempotency key (empty for a parent's start, which is idempotent by its
// parent fields).
type startInstance struct {
	req   startRequest
	key   string
	reply replier
	// fresh: the id was generated for this request and the request is
	// never sent twice, so no instance can have it: the actor it spawns
	// starts without looking in the store (seam.StartInstance.fresh_id).
	fresh bool
	// retries counts the times a parent's start of a sub-orchestration was
	// sent again after its commit failed for a reason that passes (in this
	// process only: it sets the pause before the next try).
	retries int
}

// raiseEvent delivers an external event.
type raiseEvent struct {
	id, name string
	payload  []byte
	key      string
	reply    replier
}

// control is a management operation (terminate, suspend, ...).
type control struct {
	id, reason string
	op         seam.ControlOp
	key        string
	reply      replier
}

// timerFired: the partition's timer scheduler found a due timer.
type timerFired struct {
	id     string
	taskID uint64
	due    time.Time
}

// subOrchestrationDone carries a child's outcome to its parent.
type subOrchestrationDone struct {
	id          string // the parent
	executionID string // the parent's execution that awaits it
	event       *history.Event
}

// delivery carries a message to an instance or entity: from another one's
// outbox (from and seq set; the receiver acknowledges with delivered once it
// has committed it), or from a client (reply and its idempotency key set).
type delivery struct {
	target string
	from   string
	seq    uint64
	msg    *history.Event
	key    string
	reply  replier
}

// delivered acknowledges outbox message seq of sender id.
type delivered struct {
	id  string
	seq uint64
}

func (m *delivery) instanceID() string  { return m.target }
func (m *delivered) instanceID() string { return m.id }

func (m *wake) instanceID() string                 { return m.id }
func (m *startInstance) instanceID() string        { return m.req.InstanceID }
func (m *raiseEvent) instanceID() string           { return m.id }
func (m *control) instanceID() string              { return m.id }
func (m *timerFired) instanceID() string           { return m.id }
func (m *subOrchestrationDone) instanceID() string { return m.id }

// actorStopped: an instance or entity actor tells its partition, from its
// Stopped handler, that it has stopped (passivated, failed for good, or
// shut down). It replaces a protoactor watch: a Watch is one more system
// message per activation and gives the watched actor a context extras
// allocation and a watcher set, and protoactor delivers Stopped wherever it
// would have sent Terminated (after the PID left the registry).
type actorStopped struct {
	pid *actor.PID
}

// passivateRequest: an idle instance actor asks its partition to stop it.
type passivateRequest struct {
	id  string
	pid *actor.PID
}

// passivateNow: the partition tells the instance actor to stop if it is
// still idle; it answers stayActive otherwise.
type passivateNow struct{}

// stayActive: the instance got work after asking to passivate.
type stayActive struct{ id string }

// timerScheduled tells the partition that a timer due at due was committed.
type timerScheduled struct{ due time.Time }

// timerDeleted tells the partition that a fired timer's index entry is gone.
type timerDeleted struct{ ref timerRef }

// timerTick wakes the partition's timer scheduler.
type timerTick struct{}

// timerRef names one entry of the due-timer index.
type timerRef struct {
	id   string
	task uint64
	due  int64
}

// activityResult carries an activity's outcome to its instance.
type activityResult struct {
	from        *actor.PID
	executionID string
	event       *history.Event
}

// commitResult tells an instance actor that its in-flight commit returned.
type commitResult struct{ err error }

// slotsAvailable tells an instance actor that activity slots have freed.
type slotsAvailable struct{}

// Package tracing turns what a durable node does into OpenTelemetry spans:
// one per orchestration turn (the code run on new events, then the commit
// of what it did) and one per activity execution, children of the
// instance's trace.
//
//	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter)) // an OTLP exporter, say
//	rt, err := durable.Open(durable.Options{Observer: tracing.New(tp, metrics.New())})
//	id, err := rt.Client().Start(ctx, "Order", input, durable.WithTraceParent(traceparent))
//
// The instance's trace is the one of the traceparent given at start
// (durable.WithTraceParent, or the traceparent header of the HTTP API's
// start), kept in its history so that a restarted node goes on with it,
// and passed on to sub-orchestrations. An instance started without one
// gets a trace of its own, whose id is derived from the instance id, so
// all its spans still land in one trace.
//
// Spans are made once the engine reports the work durable, with the times
// it measured: tracing never sits on the engine's path.
package tracing

import (
	"context"
	"crypto/sha256"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/durable-go/durable"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/durable-go/durable"

// Tracer is a durable.Observer that makes spans, and passes every report
// on to the observer it wraps (metrics, say), if any.
type Tracer struct {
	tracer trace.Tracer
	next   durable.Observer
}

// New returns a Tracer making spans with tp and passing every report on to
// next (nil: none).
func New(tp trace.TracerProvider, next durable.Observer) *Tracer {
	return &Tracer{tracer: tp.Tracer(ScopeName), next: next}
}

var _ durable.Observer = (*Tracer)(nil)

// parent is the span context the spans of an instance are children of.
func parent(instanceID, traceParent string) context.Context {
	ctx := context.Background()
	if traceParent != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceParent})
		if trace.SpanContextFromContext(ctx).IsValid() {
			return ctx
		}
	}
	// No trace given: one derived from the instance id, the same on every
	// node and after every restart.
	sum := sha256.Sum256([]byte("durable instance " + instanceID))
	var tid trace.TraceID
	var sid trace.SpanID
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// TurnDone makes the turn's span.
func (t *Tracer) TurnDone(turn durable.Turn) {
	_, span := t.tracer.Start(parent(turn.InstanceID, turn.TraceParent), "orchestration "+turn.Name,
		trace.WithTimestamp(turn.Began),
		trace.WithAttributes(
			attribute.String("durable.instance_id", turn.InstanceID),
			attribute.String("durable.orchestrator", turn.Name),
			attribute.String("durable.status", turn.Status),
			attribute.Int("durable.history_events", turn.Events),
		))
	if turn.Status == "Failed" {
		span.SetStatus(codes.Error, "the orchestration failed")
	}
	span.End(trace.WithTimestamp(turn.Began.Add(turn.Took)))
	if t.next != nil {
		t.next.TurnDone(turn)
	}
}

// ActivityDone makes the activity execution's span.
func (t *Tracer) ActivityDone(run durable.ActivityRun) {
	_, span := t.tracer.Start(parent(run.InstanceID, run.TraceParent), "activity "+run.Name,
		trace.WithTimestamp(run.Began),
		trace.WithAttributes(
			attribute.String("durable.instance_id", run.InstanceID),
			attribute.String("durable.activity", run.Name),
			attribute.Int("durable.attempt", run.Attempt),
		))
	if run.Failed {
		span.SetStatus(codes.Error, "the activity failed")
	}
	span.End(trace.WithTimestamp(run.Began.Add(run.Took)))
	if t.next != nil {
		t.next.ActivityDone(run)
	}
}

// InstanceStarted passes the report on.
func (t *Tracer) InstanceStarted(name string) {
	if t.next != nil {
		t.next.InstanceStarted(name)
	}
}

// InstanceEnded passes the report on.
func (t *Tracer) InstanceEnded(name, status string) {
	if t.next != nil {
		t.next.InstanceEnded(name, status)
	}
}

// TurnCommitted passes the report on.
func (t *Tracer) TurnCommitted(took time.Duration, err error) {
	if t.next != nil {
		t.next.TurnCommitted(took, err)
	}
}

// StoreCommitted passes the report on.
func (t *Tracer) StoreCommitted(partition int, took time.Duration, batches int) {
	if t.next != nil {
		t.next.StoreCommitted(partition, took, batches)
	}
}

// ActorStarted passes the report on.
func (t *Tracer) ActorStarted(kind string) {
	if t.next != nil {
		t.next.ActorStarted(kind)
	}
}

// ActorStopped passes the report on.
func (t *Tracer) ActorStopped(kind string) {
	if t.next != nil {
		t.next.ActorStopped(kind)
	}
}

// TimerFired passes the report on.
func (t *Tracer) TimerFired(lag time.Duration) {
	if t.next != nil {
		t.next.TimerFired(lag)
	}
}

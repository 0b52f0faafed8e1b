package metrics_test

import (
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/metrics"
)

// BenchmarkHooksOfAHelloCitiesInstance is what the hooks cost one W1
// instance (a start, three activities, four turns and commits, its actor
// in and out of memory, its end), to set beside W1's CPU time per instance
// (bench -w W1 -metrics). go test -run X -bench Hooks ./metrics/
func BenchmarkHooksOfAHelloCitiesInstance(b *testing.B) {
	m := metrics.New()
	var o durable.Observer = m
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		o.ActorStarted("instance")
		o.InstanceStarted("HelloCities")
		for range 3 {
			o.ActivityDone(durable.ActivityRun{InstanceID: "id", Name: "Hello", Began: now, Took: time.Millisecond, Attempt: 1})
		}
		for range 4 {
			o.TurnCommitted(time.Millisecond, nil)
			o.TurnDone(durable.Turn{InstanceID: "id", Name: "HelloCities", Began: now, Took: time.Millisecond})
			o.StoreCommitted(0, time.Millisecond, 25)
		}
		o.InstanceEnded("HelloCities", "Completed")
		o.ActorStopped("instance")
	}
}

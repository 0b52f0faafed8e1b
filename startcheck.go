package durable

import (
	"errors"
	"fmt"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/persistence"
)

// RuntimeStartOption is an option of Runtime.Start.
type RuntimeStartOption func(*runtimeStart)

type runtimeStart struct{ checkRunning bool }

// CheckRunningFirst makes Start check the store before the node takes any
// instance: it replays the history of every Pending, Running or Suspended
// instance against the code registered for its name and version (as
// CheckRunning does, but read straight from the store, so no instance has
// been reactivated yet), and refuses to start, with a *ReplayCheckError
// that carries the report, when one would fail or has no registered code.
// Nothing is changed either way; a refused runtime can be closed, or
// given the missing code and started again.
//
// The check reads every running instance's history, once per start. In a
// cluster it covers the partitions this process has open at start (none
// before they are placed), so run it on a single node over the hub, or
// call CheckRunning.
func CheckRunningFirst() RuntimeStartOption {
	return func(o *runtimeStart) { o.checkRunning = true }
}

// ErrRunningWouldFail is wrapped by the *ReplayCheckError of a Start that
// CheckRunningFirst refused.
var ErrRunningWouldFail = errors.New("running instances would fail on the registered code")

// ReplayCheckError is the error of a Start refused by CheckRunningFirst.
type ReplayCheckError struct {
	// Report says, per orchestrator name and version, which instances
	// would fail and where.
	Report *ReplayReport
}

func (e *ReplayCheckError) Error() string {
	return "start durable runtime: refused: " + ErrRunningWouldFail.Error() + ":\n" + e.Report.String()
}

// Unwrap makes errors.Is(err, ErrRunningWouldFail) hold.
func (e *ReplayCheckError) Unwrap() error { return ErrRunningWouldFail }

// checkStore is CheckRunning over the store's records and histories,
// before the node runs.
func (r *Runtime) checkStore() (*ReplayReport, error) {
	byName := map[nameVersion]*OrchestratorReplay{}
	const page = 1000
	for i := 0; i < r.hub.Partitions(); i++ {
		p := r.hub.Partition(i)
		if p == nil {
			continue // in a cluster, not placed here
		}
		for _, st := range []persistence.Status{persistence.StatusPending, persistence.StatusRunning, persistence.StatusSuspended} {
			after := ""
			for {
				ids, err := p.ListByStatus(st, after, page)
				if err != nil {
					return nil, fmt.Errorf("check running instances: %w", err)
				}
				for _, id := range ids {
					if err := r.checkStored(p, id, byName); err != nil {
						return nil, err
					}
				}
				if len(ids) < page {
					break
				}
				after = ids[len(ids)-1]
			}
		}
	}
	return reportOf(byName), nil
}

// checkStored replays one stored instance into its report entry.
func (r *Runtime) checkStored(p *persistence.Partition, id string, byName map[nameVersion]*OrchestratorReplay) error {
	rec, raw, err := p.LoadInstanceAndHistory(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check running instances: %s: %w", id, err)
	}
	o := entryOf(byName, rec.Name, rec.Version)
	fn, ok := r.reg.OrchestratorVersion(rec.Name, rec.Version)
	if !ok {
		o.Instances++
		o.Unregistered++
		return nil
	}
	events := make([]*history.Event, len(raw))
	for i, b := range raw {
		if events[i], err = history.Unmarshal(b); err != nil {
			o.Instances++
			o.WouldFail++
			o.fail(id, fmt.Errorf("history event %d: %w", i, err))
			return nil
		}
	}
	replayInto(o, id, fn, events)
	return nil
}

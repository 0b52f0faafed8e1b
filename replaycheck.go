package durable

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/durable-go/durable/durabletest"
)

// MaxReplayFailures is how many failures a ReplayReport keeps per
// orchestrator name (the counts cover all of them).
const MaxReplayFailures = 5

// ReplayReport is the result of CheckRunning: one entry per orchestrator
// name found among the instances still running, sorted by name.
type ReplayReport struct {
	Orchestrators []*OrchestratorReplay
}

// OrchestratorReplay is what CheckRunning found for the instances of one
// orchestrator name.
type OrchestratorReplay struct {
	Name string
	// Instances counts the instances of this name that were Pending,
	// Running or Suspended; Replayed those replayed against the registered
	// code, Fine those that replayed to the end of their history, and
	// WouldFail those the code diverges from (a NonDeterminismError) or
	// whose history could not be replayed. Unregistered counts the
	// instances of a name no orchestrator is registered under (nothing is
	// replayed): they would wait until code for it is registered.
	Instances, Replayed, Fine, WouldFail, Unregistered int
	// Failures are the first MaxReplayFailures of WouldFail.
	Failures []ReplayFailure
}

// ReplayFailure is one instance the registered code would fail.
type ReplayFailure struct {
	InstanceID string
	// Err says why; errors.As finds the *orchestration.NonDeterminismError
	// with the history position, the recorded event, the code's request
	// and its call site.
	Err error
}

// OK reports whether every instance replayed fine: no instance would fail
// and none has a name without registered code.
func (r *ReplayReport) OK() bool {
	for _, o := range r.Orchestrators {
		if o.WouldFail > 0 || o.Unregistered > 0 {
			return false
		}
	}
	return true
}

// Orchestrator returns the entry of name, or nil when no running instance
// has that name.
func (r *ReplayReport) Orchestrator(name string) *OrchestratorReplay {
	for _, o := range r.Orchestrators {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// String renders the report for a log or a CI step's output: a line per
// orchestrator name, then one per kept failure.
func (r *ReplayReport) String() string {
	var b strings.Builder
	for _, o := range r.Orchestrators {
		fmt.Fprintf(&b, "%s: %d running, %d replayed, %d fine, %d would fail, %d without registered code\n",
			o.Name, o.Instances, o.Replayed, o.Fine, o.WouldFail, o.Unregistered)
		for _, f := range o.Failures {
			fmt.Fprintf(&b, "  %s: %v\n", f.InstanceID, f.Err)
		}
	}
	return b.String()
}

// CheckRunning replays the history of every instance that is Pending,
// Running or Suspended against the orchestrator registered under its name,
// in this process and without changing anything, and reports per name how
// many replay fine and which would fail with a NonDeterminismError. Call it
// with the new code registered, for example in a deployment's CI step on a
// copy of the production store, and refuse the deployment unless the
// report is OK.
//
// The runtime must be started (instances and histories are read through
// the Client, a page at a time; ErrNotStarted otherwise). Start itself
// reactivates the instances that have pending work (an activity to run
// again, an undelivered message) and those replay the new code at once: a
// diverging one fails before the check sees it. Run the check on a copy of
// the store, not on the directory the deployment will serve. Instances that
// end while the check runs are skipped.
func (r *Runtime) CheckRunning(ctx context.Context) (*ReplayReport, error) {
	c := r.Client()
	byName := map[string]*OrchestratorReplay{}
	q := Query{Statuses: []RuntimeStatus{StatusPending, StatusRunning, StatusSuspended}, PageSize: MaxPageSize}
	for {
		page, err := c.List(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("check running instances: list: %w", err)
		}
		for _, st := range page.Instances {
			o := byName[st.Name]
			if o == nil {
				o = &OrchestratorReplay{Name: st.Name}
				byName[st.Name] = o
			}
			if err := r.checkInstance(ctx, c, st, o); err != nil {
				return nil, err
			}
		}
		if page.ContinuationToken == "" {
			break
		}
		q.ContinuationToken = page.ContinuationToken
	}
	report := &ReplayReport{}
	for _, o := range byName {
		if o.Instances > 0 {
			report.Orchestrators = append(report.Orchestrators, o)
		}
	}
	sort.Slice(report.Orchestrators, func(i, j int) bool { return report.Orchestrators[i].Name < report.Orchestrators[j].Name })
	return report, nil
}

// checkInstance replays one instance into o. Only a failure to read
// (other than the instance having gone) is returned.
func (r *Runtime) checkInstance(ctx context.Context, c *Client, st *Status, o *OrchestratorReplay) error {
	fn, ok := r.reg.Orchestrator(st.Name)
	if !ok || r.reg.ServedRemotely(st.Name) { // remote code is its SDK's to replay
		o.Instances++
		o.Unregistered++
		return nil
	}
	events, err := c.History(ctx, st.InstanceID)
	switch {
	case errors.Is(err, ErrInstanceNotFound):
		return nil // purged since the listing
	case err != nil:
		return fmt.Errorf("check running instances: history of %s: %w", st.InstanceID, err)
	}
	if done, err := c.Status(ctx, st.InstanceID); err == nil && done.RuntimeStatus.IsTerminal() {
		return nil // ended since the listing: nothing will replay it
	}
	o.Instances++
	if len(events) == 0 {
		o.Fine++ // not started yet: nothing recorded to diverge from
		return nil
	}
	o.Replayed++
	if err := durabletest.Replay(fn, events); err != nil {
		o.WouldFail++
		if len(o.Failures) < MaxReplayFailures {
			o.Failures = append(o.Failures, ReplayFailure{InstanceID: st.InstanceID, Err: err})
		}
		return nil
	}
	o.Fine++
	return nil
}

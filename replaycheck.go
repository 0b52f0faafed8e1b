package durable

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/internal/replay"
	"github.com/durable-go/durable/orchestration"
)

// MaxReplayFailures is how many failures a ReplayReport keeps per
// orchestrator name (the counts cover all of them).
const MaxReplayFailures = 5

// ReplayReport is the result of CheckRunning: one entry per orchestrator
// name and version found among the instances still running, sorted by
// name, then version.
type ReplayReport struct {
	Orchestrators []*OrchestratorReplay
}

// OrchestratorReplay is what CheckRunning found for the instances of one
// orchestrator name and version.
type OrchestratorReplay struct {
	Name string
	// Version is the version the instances recorded when they started
	// (empty: unversioned); they are replayed against that version's code.
	Version string
	// Instances counts the instances of this name that were Pending,
	// Running or Suspended; Replayed those replayed against the registered
	// code, Fine those that replayed to the end of their history, and
	// WouldFail those the code diverges from (a NonDeterminismError) or
	// whose history could not be replayed. Unregistered counts the
	// instances of a name and version no orchestrator is registered under
	// (nothing is replayed): they would wait until code for it is
	// registered.
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

// Orchestrator returns the entry of name (its unversioned instances, or
// the first version's when it has none), or nil when no running instance
// has that name. OrchestratorVersion finds a given version's.
func (r *ReplayReport) Orchestrator(name string) *OrchestratorReplay {
	for _, o := range r.Orchestrators {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// OrchestratorVersion returns the entry of version of name, or nil when no
// running instance runs it.
func (r *ReplayReport) OrchestratorVersion(name, version string) *OrchestratorReplay {
	for _, o := range r.Orchestrators {
		if o.Name == name && o.Version == version {
			return o
		}
	}
	return nil
}

// String renders the report for a log or a CI step's output: a line per
// orchestrator name and version, then one per kept failure.
func (r *ReplayReport) String() string {
	var b strings.Builder
	for _, o := range r.Orchestrators {
		name := o.Name
		if o.Version != "" {
			name = fmt.Sprintf("%s version %q", o.Name, o.Version)
		}
		fmt.Fprintf(&b, "%s: %d running, %d replayed, %d fine, %d would fail, %d without registered code\n",
			name, o.Instances, o.Replayed, o.Fine, o.WouldFail, o.Unregistered)
		for _, f := range o.Failures {
			fmt.Fprintf(&b, "  %s: %v\n", f.InstanceID, f.Err)
		}
	}
	return b.String()
}

// CheckRunning replays the history of every instance that is Pending,
// Running or Suspended against the orchestrator registered under its name
// and the version it recorded when it started, in this process and without
// changing anything, and reports per name and version how many replay fine
// and which would fail with a NonDeterminismError. Call it
// with the new code registered, for example in a deployment's CI step on a
// copy of the production store, and refuse the deployment unless the
// report is OK.
//
// The runtime must be started (instances and histories are read through
// the Client, a page at a time; ErrNotStarted otherwise). Start itself
// reactivates the instances that have pending work (an activity to run
// again, an undelivered message) and those replay the new code at once: a
// diverging one fails before the check sees it. Run the check on a copy of
// the store, not on the directory the deployment will serve, or check the
// store itself before the node takes any instance with
// Start(CheckRunningFirst()). Instances that end while the check runs are
// skipped.
func (r *Runtime) CheckRunning(ctx context.Context) (*ReplayReport, error) {
	c := r.Client()
	byName := map[nameVersion]*OrchestratorReplay{}
	q := Query{Statuses: []RuntimeStatus{StatusPending, StatusRunning, StatusSuspended}, PageSize: MaxPageSize}
	for {
		page, err := c.List(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("check running instances: list: %w", err)
		}
		for _, st := range page.Instances {
			if err := r.checkInstance(ctx, c, st, entryOf(byName, st.Name, st.Version)); err != nil {
				return nil, err
			}
		}
		if page.ContinuationToken == "" {
			break
		}
		q.ContinuationToken = page.ContinuationToken
	}
	return reportOf(byName), nil
}

// nameVersion keys the entries of a ReplayReport.
type nameVersion struct{ name, version string }

// entryOf returns the entry of name and version in byName, made if new.
func entryOf(byName map[nameVersion]*OrchestratorReplay, name, version string) *OrchestratorReplay {
	key := nameVersion{name, version}
	o := byName[key]
	if o == nil {
		o = &OrchestratorReplay{Name: name, Version: version}
		byName[key] = o
	}
	return o
}

// reportOf sorts the entries that counted instances into a report.
func reportOf(byName map[nameVersion]*OrchestratorReplay) *ReplayReport {
	report := &ReplayReport{}
	for _, o := range byName {
		if o.Instances > 0 {
			report.Orchestrators = append(report.Orchestrators, o)
		}
	}
	sort.Slice(report.Orchestrators, func(i, j int) bool {
		a, b := report.Orchestrators[i], report.Orchestrators[j]
		return a.Name < b.Name || a.Name == b.Name && a.Version < b.Version
	})
	return report
}

// checkInstance replays one instance into o. Only a failure to read
// (other than the instance having gone) is returned.
func (r *Runtime) checkInstance(ctx context.Context, c *Client, st *Status, o *OrchestratorReplay) error {
	fn, ok := r.reg.OrchestratorVersion(st.Name, st.Version)
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
	replayInto(o, st.InstanceID, fn, events)
	return nil
}

// replayInto replays the history of instance id against fn and counts the
// outcome in o.
func replayInto(o *OrchestratorReplay, id string, fn orchestration.Orchestrator, events []*history.Event) {
	o.Instances++
	if len(events) == 0 {
		o.Fine++ // not started yet: nothing recorded to diverge from
		return
	}
	o.Replayed++
	if err := replay.History(fn, events); err != nil {
		o.WouldFail++
		o.fail(id, err)
		return
	}
	o.Fine++
}

func (o *OrchestratorReplay) fail(id string, err error) {
	if len(o.Failures) < MaxReplayFailures {
		o.Failures = append(o.Failures, ReplayFailure{InstanceID: id, Err: err})
	}
}

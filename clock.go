package durable

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Clock is a source of workflow time (Options.Clock): Now stamps new
// events, and AfterFunc wakes the timer scan of a partition after d (at
// once when d <= 0), returning a function that cancels the wake-up.
// durabletest.Env implements one that moves only when a test advances it.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// ReplaceActivity registers fn (of the form RegisterActivity takes) under
// name in place of whatever is registered there, or as a new activity.
// Activities already running finish with the code they started with; the
// next one scheduled runs fn. It is meant for tests, to put a fake in
// place of an activity registered by the code under test
// (durabletest.Env.OnActivity).
func (r *Runtime) ReplaceActivity(name string, fn any) error {
	if name == "" || fn == nil {
		return fmt.Errorf("replace activity %q: %w", name, ErrInvalidInput)
	}
	wire, err := adaptActivity(fn)
	if err != nil {
		return fmt.Errorf("replace activity %q: %w", name, err)
	}
	r.reg.replaceActivity(name, wire)
	return nil
}

// Backlog is the work a node has durably queued and not finished, read
// from the store's recovery indexes (see Runtime.Backlog).
type Backlog struct {
	// Tasks are the instances with a scheduled task not completed yet: an
	// activity (to run, or running) or a sub-orchestration (starting,
	// running or with its outcome on the way), sorted.
	Tasks []string
	// Messages counts the instances and entities with a message on its
	// way: an instance's undelivered one, or anyone's unacknowledged
	// outgoing one.
	Messages int
	// Queued counts the entities with operations they hold back: a signal
	// scheduled for later (its time is among the timers) or one waiting
	// for a lock to be released. They wait, like a timer does.
	Queued int
	// NextTimer is when the earliest durable timer is due (zero: none);
	// a timer stays until the turn that consumes its firing commits.
	NextTimer time.Time
	// Committing: a commit is running or queued on some partition.
	Committing bool
}

// Settled reports whether nothing is left to do before now: no task is
// open, no message is on its way, no commit is under way and no timer is
// due by now.
func (b Backlog) Settled(now time.Time) bool {
	return len(b.Tasks) == 0 && b.Messages == 0 && !b.Committing && (b.NextTimer.IsZero() || b.NextTimer.After(now))
}

// Backlog reads the work the partitions this node hosts have queued: the
// same indexes recovery reads (never a scan of all instances). A node
// whose backlog is settled has nothing to do until a timer is due or a
// request comes; durabletest.Env waits for that after each step of a test.
func (r *Runtime) Backlog() (Backlog, error) {
	if _, err := r.partitions(); err != nil {
		return Backlog{}, err
	}
	var b Backlog
	for i := 0; i < r.hub.Partitions(); i++ {
		p := r.hub.Partition(i)
		if p == nil {
			continue // in a cluster, hosted elsewhere
		}
		if !p.Idle() {
			b.Committing = true
		}
		ids, err := p.InstancesWithWork()
		if err != nil {
			return Backlog{}, fmt.Errorf("backlog: %w", err)
		}
		for _, id := range ids {
			tasks, err := p.PendingActivities(id)
			if err != nil {
				return Backlog{}, fmt.Errorf("backlog: %w", err)
			}
			if len(tasks) > 0 {
				b.Tasks = append(b.Tasks, id)
			}
			in, err := p.LoadInbox(id)
			if err != nil {
				return Backlog{}, fmt.Errorf("backlog: %w", err)
			}
			out, err := p.LoadOutbox(id)
			if err != nil {
				return Backlog{}, fmt.Errorf("backlog: %w", err)
			}
			// An entity ("@name@key"; instance ids never start with @)
			// takes what arrives into its queue in the commit that
			// acknowledges it: what stays there waits for a time or a
			// lock, not for delivery.
			switch entity := strings.HasPrefix(id, "@"); {
			case len(out) > 0 || len(in) > 0 && !entity:
				b.Messages++
			case len(in) > 0:
				b.Queued++
			}
		}
		next, err := p.DueTimers(time.Unix(0, 1<<62), 1)
		if err != nil {
			return Backlog{}, fmt.Errorf("backlog: %w", err)
		}
		if len(next) > 0 && (b.NextTimer.IsZero() || next[0].Due.Before(b.NextTimer)) {
			b.NextTimer = next[0].Due
		}
	}
	sort.Strings(b.Tasks)
	return b, nil
}

package orchestration

import (
	"fmt"

	"github.com/durable-go/durable/history"
)

// Patches change the code of an orchestrator while instances of it run.
// The change goes in three deployments:
//
//  1. Branch on IsPatched: new instances take the new path and record a
//     marker; instances whose history was written by the old code, without
//     the marker, replay and go on along the old path.
//  2. Once no instance from before step 1 runs, replace the branch with
//     DeprecatePatch and keep only the new path: histories with the marker
//     (written in step 1) and without it (written from now on) replay.
//  3. Once no instance from before step 2 runs (no history holds the
//     marker), remove the DeprecatePatch call.
//
// The rules, per patch name and per execution (continue-as-new starts
// afresh):
//
//   - The first call for a name decides the answer; every later call of
//     IsPatched or DeprecatePatch for that name returns it and records
//     nothing.
//   - Running new (not replaying), IsPatched returns true and records a
//     history.PatchMarker event with the name, in order with the code's
//     other actions; DeprecatePatch records nothing.
//   - Replaying, the marker must be where the code asks: the history
//     position at which the code's next action was recorded. If the event
//     there is the name's marker, the answer is true. If history holds the
//     name's marker at a later position instead, the call moved: that
//     history cannot come from code without the patch, and replay fails
//     with a *NonDeterminismError at this call. Otherwise history came
//     from code without the patch: IsPatched returns false (the old path)
//     and DeprecatePatch goes on as patched (a history without the marker
//     from step 2).
//   - Replay that reaches a marker the code did not ask for at that
//     position (the call was removed, renamed, or moved after an action
//     recorded before it) fails with a *NonDeterminismError naming the
//     position and the marker.
//
// DeprecatePatch cannot tell a step-2 history from one written before step
// 1: both lack the marker. That is why step 2 waits for the old instances to
// end; one left behind takes the new path and fails with a
// NonDeterminismError at its first action that differs.

// IsPatched reports whether the execution takes the path of the patch
// called name: true in a new execution, which records a marker in history;
// on replay, whether history holds that marker where the code asks. The
// answer is decided on the first call for name and kept for the execution.
// See the rules above.
func (c *Context) IsPatched(name string) bool {
	return c.e.patch(name, false)
}

// DeprecatePatch marks the patch called name as the only path left: the
// code after it is the patched code, with no branch. A new execution
// records nothing; a replay accepts the patch's marker where the code calls
// it, and its absence. Later IsPatched calls for name return true. Remove
// the call once no running instance's history holds the marker.
func (c *Context) DeprecatePatch(name string) {
	c.e.patch(name, true)
}

func (e *Execution) patch(name string, deprecated bool) bool {
	if patched, ok := e.patches[name]; ok {
		return patched
	}
	if e.patches == nil {
		e.patches = make(map[string]bool)
	}
	if !e.replaying {
		e.patches[name] = true
		if !deprecated {
			// An action of the code, committed with the turn; it asks for
			// no work outside the instance, so it is no Turn.Actions entry.
			e.emit(&history.Event{Type: history.PatchMarker, Name: name})
		}
		return true
	}
	recorded, nd := e.recordedPatch(name)
	if nd != nil {
		site := e.callers()
		nd.CallSite = site.String()
		e.halt(nd)
	}
	if recorded {
		e.patchAt = append(e.patchAt, e.cursor)
		e.cursor++
	}
	patched := recorded || deprecated
	e.patches[name] = patched
	return patched
}

// recordedPatch reports, while replaying, whether the event at the cursor
// is name's marker. A marker of name later in history instead is a
// non-determinism (the call moved).
func (e *Execution) recordedPatch(name string) (bool, *NonDeterminismError) {
	i := e.cursor - e.replayBase
	if i < 0 {
		i = 0
	}
	if i < len(e.replayEvents) {
		if ev := e.replayEvents[i]; ev.Type == history.PatchMarker && ev.Name == name {
			return true, nil
		}
	}
	for j := i + 1; j < len(e.replayEvents); j++ {
		ev := e.replayEvents[j]
		if ev.Type != history.PatchMarker || ev.Name != name {
			continue
		}
		nd := &NonDeterminismError{Position: e.cursor, Requested: ev.Describe()}
		if i < len(e.replayEvents) {
			nd.Recorded = e.replayEvents[i].Describe()
		}
		nd.Recorded = fmt.Sprintf("%s (%s is at history event %d)", orNothing(nd.Recorded), ev.Describe(), e.replayBase+j)
		return false, nd
	}
	return false, nil
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

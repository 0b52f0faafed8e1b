package orchestration

import (
	"fmt"

	"github.com/durable-go/durable/history"
)

// IsPatched reports whether the execution takes the path of the patch
// called name: true in a new execution, which records a marker in history;
// on replay, whether history holds that marker where the code asks. The
// answer is decided on the first call for name and kept for the execution.
// The package documentation, under Patches, gives the exact rules.
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
		site := e.callStack()
		nd.CallSite = site.String()
		if !e.running {
			// Asked on the engine's side (a retry predicate): end here.
			e.fail(nd)
			return false
		}
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

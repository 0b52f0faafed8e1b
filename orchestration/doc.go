// Package orchestration is the pure replay engine of durable and the
// programming model of orchestrator functions.
//
// It is shaped like etcd's raft: the caller feeds it history events and it
// hands back what must be done, and it never touches a clock, a disk, a
// socket or an actor. An Execution wraps one run of an orchestrator
// function:
//
//	exec := orchestration.NewExecution(instanceID, executionID, fn, logger)
//	turn, err := exec.Replay(storedHistory) // rebuild the in-memory state
//	turn, err = exec.Apply(newEvents)       // run the code until it blocks again
//	// turn.Events  -> append to history, in the same transaction as the status
//	// turn.Actions -> dispatch only after that commit
//
// The orchestrator function runs on a goroutine of its own, but only one of
// the engine and the code runs at any moment: the engine hands control to the
// code when a task the code awaits completes, and takes it back when the code
// blocks again. So the code observes events in history order, and a replay
// does exactly what the original run did. Everything the code may observe
// (time, ids, inputs, results) comes from history.
//
// # Patches
//
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
// Names are compared exactly. An old instance that had not reached the call
// when the new code took over asks it running new: it takes the new path,
// which its history does not contradict.
//
// DeprecatePatch cannot tell a step-2 history from one written before step
// 1: both lack the marker. That is why step 2 waits for the old instances to
// end; one left behind takes the new path and fails with a
// NonDeterminismError at its first action that differs. (Temporal's
// deprecatePatch records a marker flagged deprecated; here it records none,
// since a marker no call asks for fails replay, and step 3 must replay the
// histories step 2 wrote.)
package orchestration

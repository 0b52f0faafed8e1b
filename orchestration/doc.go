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
package orchestration

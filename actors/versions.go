package actors

import (
	"fmt"

	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
)

// Versions is the part of a Registry that holds several versions of an
// orchestrator name. A Registry without it has one version of each name,
// the unversioned "" that Registry.Orchestrator returns.
//
// An instance records the version it starts on (in its record and its
// ExecutionStarted event) and is looked up by name and version once per
// activation, start and continue-as-new: never per turn.
type Versions interface {
	// OrchestratorVersion finds version of orchestrator name ("" is the
	// unversioned registration).
	OrchestratorVersion(name, version string) (orchestration.Orchestrator, bool)
	// DefaultVersion is the version new instances of name start on.
	DefaultVersion(name string) (string, bool)
}

// orchestratorVersion finds the code of version of orchestrator name.
func (n *Node) orchestratorVersion(name, version string) (orchestration.Orchestrator, bool) {
	if vs, ok := n.cfg.Registry.(Versions); ok {
		return vs.OrchestratorVersion(name, version)
	}
	if version != "" {
		return nil, false
	}
	return n.cfg.Registry.Orchestrator(name)
}

// defaultOrchestrator finds the default version of orchestrator name and
// its code.
func (n *Node) defaultOrchestrator(name string) (string, orchestration.Orchestrator, bool) {
	version := ""
	if vs, ok := n.cfg.Registry.(Versions); ok {
		v, ok := vs.DefaultVersion(name)
		if !ok {
			return "", nil, false
		}
		version = v
	}
	fn, ok := n.orchestratorVersion(name, version)
	return version, fn, ok
}

// startVersion resolves the version a start request runs: the one it
// picks, or the default.
func (n *Node) startVersion(req *startRequest) (string, orchestration.Orchestrator, error) {
	if req.PickVersion {
		if fn, ok := n.orchestratorVersion(req.Name, req.Version); ok {
			return req.Version, fn, nil
		}
		return "", nil, fmt.Errorf("orchestrator %q version %q: %w", req.Name, req.Version, seam.ErrOrchestratorNotRegistered)
	}
	if v, fn, ok := n.defaultOrchestrator(req.Name); ok {
		return v, fn, nil
	}
	return "", nil, fmt.Errorf("orchestrator %q: %w", req.Name, seam.ErrOrchestratorNotRegistered)
}

// WaitingForVersion counts the instances loaded on this node that wait
// because their orchestrator's name is registered here but not the
// version they run.
func (n *Node) WaitingForVersion() int { return int(n.waitingForVersion.Load()) }

// markCodeMissing sets VersionNotRegistered on the statuses in resp of
// instances that have not ended and whose name and version this node has
// no code for: they wait until a node that has it serves them.
func (n *Node) markCodeMissing(resp *seam.Response) *seam.Response {
	mark := func(st *seam.InstanceStatus) {
		if st == nil || persistence.Status(st.GetRuntimeStatus()).IsTerminal() {
			return
		}
		if _, ok := n.orchestratorVersion(st.GetName(), st.GetVersion()); !ok {
			st.VersionNotRegistered = true
		}
	}
	mark(resp.GetInstance())
	for _, st := range resp.GetInstances() {
		mark(st)
	}
	return resp
}

// waitForVersion leaves the loaded instance as it is on disk, not failed,
// because this node has its name registered but not its version: requests
// that need its code are refused with a clear error, its timers and
// pending tasks stay indexed, and a node with the version runs it.
func (a *instanceActor) waitForVersion(rec *persistence.InstanceRecord) {
	a.broken = fmt.Errorf("instance %s runs version %q of orchestrator %q, which this node has not registered (it waits for a node that has): %w",
		a.id, rec.Version, rec.Name, seam.ErrOrchestratorNotRegistered)
	if !a.waitingVersion {
		a.waitingVersion = true
		a.node.waitingForVersion.Add(1)
	}
	a.logger().Warn("instance waits for an orchestrator version this node has not registered",
		"orchestrator", rec.Name, "version", rec.Version)
}

// endWaitForVersion: the instance ended (terminated) while it waited for
// its version, so nothing of it needs that code any more.
func (a *instanceActor) endWaitForVersion() {
	if a.waitingVersion {
		a.broken = nil
		a.stopWaitingForVersion()
	}
}

// stopWaitingForVersion takes the instance out of the node's count.
func (a *instanceActor) stopWaitingForVersion() {
	if a.waitingVersion {
		a.waitingVersion = false
		a.node.waitingForVersion.Add(-1)
	}
}

package durable

import (
	"fmt"
	"unicode"

	"github.com/durable-go/durable/orchestration"
)

// RegisterOption is an option of RegisterOrchestrator.
type RegisterOption func(*registerOptions)

type registerOptions struct {
	version    string
	asDefault  bool
	hasVersion bool
}

// MaxVersionLength is the longest orchestrator version accepted.
const MaxVersionLength = 64

// Version registers the function as version v of the orchestrator: a name
// may have several versions, each registered once. Every instance records
// the version it started on (in its ExecutionStarted event and its status)
// and runs that version's code for as long as it runs, whatever versions
// are registered later; new instances start on the default version (see
// AsDefault) unless Client.Start picks one with WithVersion.
//
// A registration without Version is the unversioned version "", which is
// also the version of every instance started before its orchestrator had
// versions: keep it registered while such instances run.
//
// A node that has the name registered but not an instance's version leaves
// the instance waiting, as it is on disk (not failed): its status says
// VersionNotRegistered, the node logs a warning and counts it in
// Stats.WaitingForVersion, and a node with that version runs it.
func Version(v string) RegisterOption {
	return func(o *registerOptions) { o.version, o.hasVersion = v, true }
}

// AsDefault makes this version the default of its orchestrator: the one
// new instances start on when Client.Start picks none. Without it the
// default is the version registered last.
func AsDefault() RegisterOption {
	return func(o *registerOptions) { o.asDefault = true }
}

// orchestratorVersions are the registered versions of one orchestrator
// name.
type orchestratorVersions struct {
	byVersion map[string]orchestration.Orchestrator
	def       string // the default version
	chosen    bool   // def was chosen with AsDefault
}

func (vs *orchestratorVersions) add(name string, fn orchestration.Orchestrator, o registerOptions) error {
	if _, ok := vs.byVersion[o.version]; ok {
		if o.hasVersion {
			return fmt.Errorf("register orchestrator %q version %q: %w", name, o.version, ErrAlreadyRegistered)
		}
		return fmt.Errorf("register orchestrator %q: %w", name, ErrAlreadyRegistered)
	}
	if o.asDefault && vs.chosen {
		return fmt.Errorf("register orchestrator %q version %q as default: version %q already is: %w", name, o.version, vs.def, ErrInvalidInput)
	}
	vs.byVersion[o.version] = fn
	switch {
	case o.asDefault:
		vs.def, vs.chosen = o.version, true
	case !vs.chosen:
		vs.def = o.version
	}
	return nil
}

// validateVersion checks a version string: at most MaxVersionLength bytes,
// no control characters.
func validateVersion(v string) error {
	if len(v) > MaxVersionLength {
		return fmt.Errorf("%w: version longer than %d bytes", ErrInvalidInput, MaxVersionLength)
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: version %q contains %q", ErrInvalidInput, v, r)
		}
	}
	return nil
}

package durable

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/durable-go/durable/actors"
	"github.com/durable-go/durable/internal/jsonfast"
	"github.com/durable-go/durable/orchestration"
)

// registry holds the registered functions by name.
type registry struct {
	mu            sync.RWMutex
	orchestrators map[string]*orchestratorVersions
	activities    map[string]actors.ActivityFunc
	entities      map[string]orchestration.EntityFunc // by lower-cased name
	// remoteActivity serves the activities not in activities, and
	// remoteOrchestrator the orchestrators not in orchestrators; remoteKnown
	// says which names a worker serves (remote.go).
	remoteActivity     RemoteActivityFunc
	remoteOrchestrator RemoteOrchestratorFunc
	remoteKnown        func(name string) bool
	// remoteEntity serves the entities not in entities; remoteEntityKnown
	// says which names a worker serves.
	remoteEntity      RemoteEntityFunc
	remoteEntityKnown func(name string) bool
}

func newRegistry() *registry {
	return &registry{
		orchestrators: map[string]*orchestratorVersions{},
		activities:    map[string]actors.ActivityFunc{},
		entities:      map[string]orchestration.EntityFunc{},
	}
}

func (r *registry) addOrchestrator(name string, fn orchestration.Orchestrator, o registerOptions) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := r.orchestrators[name]
	if vs == nil {
		vs = &orchestratorVersions{byVersion: map[string]orchestration.Orchestrator{}}
		r.orchestrators[name] = vs
	}
	return vs.add(name, fn, o)
}

func (r *registry) addActivity(name string, fn actors.ActivityFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.activities[name]; ok {
		return fmt.Errorf("register activity %q: %w", name, ErrAlreadyRegistered)
	}
	r.activities[name] = fn
	return nil
}

// replaceActivity registers fn under name, in place of what is there.
func (r *registry) replaceActivity(name string, fn actors.ActivityFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.activities[name] = fn
}

func (r *registry) addEntity(name string, fn orchestration.EntityFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := strings.ToLower(name)
	if _, ok := r.entities[key]; ok {
		return fmt.Errorf("register entity %q: %w", name, ErrAlreadyRegistered)
	}
	r.entities[key] = fn
	return nil
}

// Entity implements actors.Registry.
func (r *registry) Entity(name string) (orchestration.EntityFunc, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn, ok := r.entities[strings.ToLower(name)]
	return fn, ok
}

// EntityServedRemotely implements actors.RemoteEntities: a name no Go
// function is registered for runs on remote workers once they are set.
func (r *registry) EntityServedRemotely(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.entities[strings.ToLower(name)]
	return !ok && r.remoteEntity != nil
}

// RunEntityBatch implements actors.RemoteEntities.
func (r *registry) RunEntityBatch(ctx context.Context, batch actors.RemoteEntityBatch, done func(*actors.RemoteEntityResult, error)) {
	r.mu.RLock()
	fn := r.remoteEntity
	r.mu.RUnlock()
	if fn == nil {
		done(nil, errors.New("no remote entities are set"))
		return
	}
	fn(ctx, batch, done)
}

// entityKnown reports whether the Client may address entity name: Go code
// serves it, or a remote worker says it does.
func (r *registry) entityKnown(name string) bool {
	r.mu.RLock()
	_, ok := r.entities[strings.ToLower(name)]
	known := r.remoteEntityKnown
	r.mu.RUnlock()
	return ok || (known != nil && known(name))
}

func (r *registry) setRemoteEntities(fn RemoteEntityFunc, known func(string) bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.remoteEntity != nil {
		return fmt.Errorf("set remote entities: %w", ErrAlreadyRegistered)
	}
	r.remoteEntity, r.remoteEntityKnown = fn, known
	return nil
}

// Orchestrator implements actors.Registry: the default version of name.
func (r *registry) Orchestrator(name string) (orchestration.Orchestrator, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if vs := r.orchestrators[name]; vs != nil {
		return vs.byVersion[vs.def], true
	}
	if r.remoteOrchestrator != nil {
		return servedRemotely, true
	}
	return nil, false
}

// OrchestratorVersion implements actors.Versions.
func (r *registry) OrchestratorVersion(name, version string) (orchestration.Orchestrator, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if vs := r.orchestrators[name]; vs != nil {
		fn, ok := vs.byVersion[version]
		return fn, ok
	}
	if version == "" && r.remoteOrchestrator != nil {
		return servedRemotely, true
	}
	return nil, false
}

// DefaultVersion implements actors.Versions.
func (r *registry) DefaultVersion(name string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if vs := r.orchestrators[name]; vs != nil {
		return vs.def, true
	}
	if r.remoteOrchestrator != nil {
		return "", true
	}
	return "", false
}

// ServedRemotely implements actors.RemoteOrchestrators: a name no Go
// function is registered for runs on remote workers once they are set.
func (r *registry) ServedRemotely(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.orchestrators[name]
	return !ok && r.remoteOrchestrator != nil
}

// RunTurn implements actors.RemoteOrchestrators.
func (r *registry) RunTurn(ctx context.Context, turn actors.RemoteTurn, done func(*actors.RemoteResult, error)) {
	r.mu.RLock()
	fn := r.remoteOrchestrator
	r.mu.RUnlock()
	fn(ctx, turn, done)
}

// startable reports whether Client.Start may start name: Go code serves
// it, or a remote worker says it does.
func (r *registry) startable(name string) bool {
	r.mu.RLock()
	_, ok := r.orchestrators[name]
	known := r.remoteKnown
	r.mu.RUnlock()
	return ok || (known != nil && known(name))
}

func (r *registry) setRemoteOrchestrators(fn RemoteOrchestratorFunc, known func(string) bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.remoteOrchestrator != nil {
		return fmt.Errorf("set remote orchestrators: %w", ErrAlreadyRegistered)
	}
	r.remoteOrchestrator, r.remoteKnown = fn, known
	return nil
}

// Activity implements actors.Registry.
func (r *registry) Activity(name string) (actors.ActivityFunc, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn, ok := r.activities[name]
	if !ok && r.remoteActivity != nil {
		remote := r.remoteActivity
		return func(ctx context.Context, input []byte) ([]byte, error) { return remote(ctx, name, input) }, true
	}
	return fn, ok
}

func (r *registry) setRemoteActivities(fn RemoteActivityFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.remoteActivity != nil {
		return fmt.Errorf("set remote activities: %w", ErrAlreadyRegistered)
	}
	r.remoteActivity = fn
	return nil
}

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)

// adaptActivity turns func(context.Context[, In]) ([Out, ]error) into the
// wire form: JSON in, JSON out.
func adaptActivity(fn any) (actors.ActivityFunc, error) {
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return nil, fmt.Errorf("%w: activity must be a function, got %s", ErrInvalidInput, t)
	}
	if t.IsVariadic() || t.NumIn() < 1 || t.NumIn() > 2 || t.In(0) != contextType {
		return nil, fmt.Errorf("%w: activity must take (context.Context[, input]), got %s", ErrInvalidInput, t)
	}
	if t.NumOut() < 1 || t.NumOut() > 2 || t.Out(t.NumOut()-1) != errorType {
		return nil, fmt.Errorf("%w: activity must return ([output, ]error), got %s", ErrInvalidInput, t)
	}
	hasInput, hasOutput := t.NumIn() == 2, t.NumOut() == 2
	return func(ctx context.Context, input []byte) ([]byte, error) {
		args := []reflect.Value{reflect.ValueOf(ctx)}
		if hasInput {
			in := reflect.New(t.In(1))
			if len(input) > 0 {
				if err := jsonfast.Unmarshal(input, in.Interface()); err != nil {
					return nil, fmt.Errorf("decode activity input: %w", err)
				}
			}
			args = append(args, in.Elem())
		}
		out := v.Call(args)
		if errV := out[len(out)-1]; !errV.IsNil() {
			return nil, errV.Interface().(error)
		}
		if !hasOutput {
			return nil, nil
		}
		b, err := jsonfast.Marshal(out[0].Interface())
		if err != nil {
			return nil, errors.Join(errors.New("encode activity output"), err)
		}
		return b, nil
	}, nil
}

package orchestration

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/durable-go/durable/history"
)

type counterState struct{ Value int }

func (c *counterState) Add(n int) { c.Value += n }
func (c *counterState) Get() int  { return c.Value }
func (c *counterState) Boom(ctx *EntityContext) error {
	c.Value = 99
	return errors.New("boom")
}
func (c *counterState) Tell(ctx *EntityContext, to string) error {
	return ctx.SignalEntity(EntityID{Name: "Counter", Key: to}, "add", c.Value)
}

func newID() string { return "00000000-0000-0000-0000-000000000000" }

func TestStructEntityDispatchesMethodsAndKeepsState(t *testing.T) {
	fn, err := EntityFromStruct[counterState]()
	if err != nil {
		t.Fatal(err)
	}
	id := EntityID{Name: "Counter", Key: "k"}
	out := RunEntityOperation(fn, id, "ADD", []byte("5"), nil, false, newID)
	if out.Failure != nil || string(out.State) != `{"Value":5}` || !out.HasState {
		t.Fatalf("%+v %v", out, out.Failure)
	}
	out = RunEntityOperation(fn, id, "get", nil, out.State, true, newID)
	if string(out.Result) != "5" {
		t.Fatalf("get: %s", out.Result)
	}
	failed := RunEntityOperation(fn, id, "boom", nil, out.State, true, newID)
	if failed.Failure == nil || string(failed.State) != `{"Value":5}` {
		t.Fatalf("a failed operation must roll back: %+v", failed)
	}
	told := RunEntityOperation(fn, id, "tell", []byte(`"other"`), out.State, true, newID)
	if len(told.Signals) != 1 || told.Signals[0].Target.String() != "@counter@other" || string(told.Signals[0].Input) != "5" {
		t.Fatalf("signals %+v", told.Signals)
	}
	unknown := RunEntityOperation(fn, id, "nope", nil, out.State, true, newID)
	if unknown.Failure == nil || !strings.Contains(unknown.Failure.Message, "unknown entity operation") {
		t.Fatalf("%+v", unknown.Failure)
	}
	deleted := RunEntityOperation(fn, id, "delete", nil, out.State, true, newID)
	if deleted.HasState {
		t.Fatalf("delete kept state: %+v", deleted)
	}
}

func TestPanickingEntityOperationRollsBack(t *testing.T) {
	fn := func(ctx *EntityContext) error {
		_ = ctx.SetState(1)
		panic("entity bug")
	}
	out := RunEntityOperation(fn, EntityID{Name: "x", Key: "y"}, "op", nil, []byte("0"), true, newID)
	if out.Failure == nil || out.Failure.ErrorType != ErrorTypePanic || string(out.State) != "0" {
		t.Fatalf("%+v", out)
	}
}

func TestEntityIDRoundTrips(t *testing.T) {
	id := EntityID{Name: "Counter", Key: "a@b"}
	parsed, err := ParseEntityID(id.String())
	if err != nil || parsed.Name != "counter" || parsed.Key != "a@b" {
		t.Fatalf("%+v %v", parsed, err)
	}
	for _, bad := range []string{"", "counter", "@", "@@k", "x@y"} {
		if _, err := ParseEntityID(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestCriticalSectionIsReleasedWhenTheOrchestratorReturns(t *testing.T) {
	a, b := EntityID{Name: "Account", Key: "b"}, EntityID{Name: "Account", Key: "a"}
	d := newDriver(t, func(ctx *Context) (any, error) {
		if _, err := ctx.LockEntities(a, b); err != nil {
			return nil, err
		}
		if err := ctx.CallEntity(EntityID{Name: "Other", Key: "x"}, "op", nil).Await(nil); !errors.Is(err, ErrNotLocked) {
			return nil, errors.New("calling an unlocked entity inside a section must fail")
		}
		if _, err := ctx.LockEntities(a); !errors.Is(err, ErrAlreadyLocked) {
			return nil, errors.New("nested lock must fail")
		}
		return orchestrationAwaitInt(ctx.CallEntity(a, "get", nil))
	}, "")
	lock := d.action(history.EntityLockRequested)
	var set []string
	_ = json.Unmarshal(lock.Payload, &set)
	if strings.Join(set, ",") != "@account@a,@account@b" {
		t.Fatalf("lock order %v", set)
	}
	d.apply(&history.Event{Type: history.EntityLockGranted, TaskID: lock.TaskID})
	call := d.action(history.EntityOperationCalled)
	turn := d.apply(&history.Event{Type: history.EntityOperationCompleted, TaskID: call.TaskID, Payload: []byte("42")})
	if !turn.Done || string(turn.Output) != "42" {
		t.Fatalf("%+v", turn)
	}
	unlock := d.action(history.EntityUnlockSent)
	if string(unlock.Payload) != `["@account@a","@account@b"]` {
		t.Fatalf("unlock %s", unlock.Payload)
	}
}

func orchestrationAwaitInt(t Task) (any, error) { return Await[int](t) }

package durable_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// FuzzInstanceID: an id ValidateInstanceID accepts starts an instance that
// Status finds under that very id; an id it rejects fails Start with
// ErrInvalidInstanceID and starts nothing. Neither panics.
func FuzzInstanceID(f *testing.F) {
	for _, s := range []string{"a", "order-1", "@x", "a/b", "a\\b", "a#b", "a?b", "tab\tid", "é", "\xff", strings.Repeat("i", 256), strings.Repeat("i", 257), " ", "@"} {
		f.Add(s)
	}
	rt, err := durable.Open(durable.Options{Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = rt.Close() })
	must(rt.RegisterOrchestrator("Nothing", func(*orchestration.Context) (any, error) { return nil, nil }))
	must(rt.Start())
	f.Fuzz(func(t *testing.T, id string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		valid := durable.ValidateInstanceID(id) == nil
		got, err := rt.Client().Start(ctx, "Nothing", nil, durable.WithInstanceID(id))
		if id == "" { // no id chosen: the client makes one
			if err != nil || durable.ValidateInstanceID(got) != nil {
				t.Fatalf("Start without an id: %q, %v", got, err)
			}
			return
		}
		if !valid {
			if !errors.Is(err, durable.ErrInvalidInstanceID) {
				t.Fatalf("Start with the invalid id %q: %v", id, err)
			}
			return
		}
		if err != nil && !errors.Is(err, durable.ErrInstanceExists) {
			t.Fatalf("Start with the valid id %q: %v", id, err)
		}
		if err == nil && got != id {
			t.Fatalf("Start(%q) returned id %q", id, got)
		}
		st, err := rt.Client().Status(ctx, id)
		if err != nil || st.InstanceID != id {
			t.Fatalf("Status(%q): %+v %v", id, st, err)
		}
	})
}

// FuzzEntityID: ParseEntityID and ValidateEntityID never panic, and a
// valid id whose name has no upper case survives String and ParseEntityID.
func FuzzEntityID(f *testing.F) {
	for _, s := range []string{"@counter@k", "@counter@", "@@k", "counter@k", "@a@b@c", "@a\x00@k", "@" + strings.Repeat("n", 129) + "@k", "@Counter@K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := orchestration.ParseEntityID(s)
		if err != nil {
			return
		}
		if durable.ValidateEntityID(id) != nil || strings.ToLower(id.Name) != id.Name {
			return
		}
		again, err := orchestration.ParseEntityID(id.String())
		if err != nil || again != id {
			t.Fatalf("%q parses to %+v, whose String %q parses to %+v, %v", s, id, id.String(), again, err)
		}
	})
}

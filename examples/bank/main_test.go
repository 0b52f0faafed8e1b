package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

func TestManyConcurrentTransfersInMemoryKeepTheTotal(t *testing.T) {
	var out bytes.Buffer
	s := Settings{A: "a", B: "b", Opening: 500, Transfers: 400, MaxAmount: 120, Workers: 64}
	if err := run(durable.Options{}, s, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "the total is unchanged") || !strings.Contains(out.String(), "all 400 transfers completed") {
		t.Fatal(out.String())
	}
}

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func openRuntime(t *testing.T, dir string) *durable.Runtime {
	t.Helper()
	rt, err := durable.Open(durable.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(rt); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	return rt
}

// Transfers are in flight (some holding locks, some waiting for them) when
// the runtime is closed; after durable.Open on the same directory every one
// of them completes, more run alongside, and no money is created or lost.
func TestTransfersSurviveACloseAndReopenMidWay(t *testing.T) {
	for _, tc := range []struct {
		name      string
		doneFirst int // transfers completed before the close
	}{{"right after starting", 0}, {"a third done", 40}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			const opening = 300
			rt := openRuntime(t, dir)
			c := rt.Client()
			for _, k := range []string{"a", "b"} {
				if err := c.SignalEntity(ctx, AccountID(k), "deposit", opening); err != nil {
					t.Fatal(err)
				}
			}
			first := Transfers("a", "b", 120, 90)
			ids, err := StartTransfers(ctx, c, first, 32)
			if err != nil {
				t.Fatal(err)
			}
			done := 0
			for _, id := range ids {
				if done >= tc.doneFirst {
					break
				}
				if _, err := c.WaitForCompletion(ctx, id); err != nil {
					t.Fatal(err)
				}
				done++
			}
			if err := rt.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			finished := 0
			if rt2, err := durable.Open(durable.Options{Dir: dir}); err == nil {
				// Peek before starting: how many were finished at the close.
				for _, id := range ids {
					if st, err := rt2.Client().Status(ctx, id); err == nil && st.RuntimeStatus.IsTerminal() {
						finished++
					}
				}
				rt2.Close()
			}
			t.Logf("%d of %d transfers finished at the close", finished, len(ids))

			rt = openRuntime(t, dir)
			defer rt.Close()
			c = rt.Client()
			second := Transfers("b", "a", 60, 70)
			ids2, err := StartTransfers(ctx, c, second, 32)
			if err != nil {
				t.Fatal(err)
			}
			o, err := WaitTransfers(ctx, c, append(ids, ids2...), append(first, second...))
			if err != nil {
				t.Fatal(err)
			}
			if o.Done+o.Declined != len(first)+len(second) || o.Done == 0 {
				t.Fatalf("outcomes %+v", o)
			}
			balA, balB, err := Balances(ctx, c, "a", "b")
			if err != nil {
				t.Fatal(err)
			}
			if balA+balB != 2*opening {
				t.Fatalf("money created or lost: a %d + b %d = %d, want %d", balA, balB, balA+balB, 2*opening)
			}
			if balA-opening != o.Moved["a"] || balB-opening != o.Moved["b"] {
				t.Fatalf("balances a %d b %d, completed transfers moved %v", balA, balB, o.Moved)
			}
			if balA < 0 || balB < 0 {
				t.Fatalf("negative balance: a %d b %d", balA, balB)
			}
			t.Logf("%d done, %d declined; a %d, b %d", o.Done, o.Declined, balA, balB)
		})
	}
}

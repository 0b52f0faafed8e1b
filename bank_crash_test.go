package durable_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// Transfers under critical sections in a child process killed with
// SIGKILL mid-way: after a restart every transfer completes and no money
// is created or lost.
const (
	bankDirEnv    = "DURABLE_BANK_DIR"
	bankTransfers = 40
	bankAccounts  = 4
	bankInitial   = 1000
)

func registerSlowBank(rt *durable.Runtime) {
	registerEntities(rt)
	must(rt.RegisterOrchestrator("SlowTransfer", func(ctx *orchestration.Context) (any, error) {
		var in transferInput
		if err := ctx.Input(&in); err != nil {
			return nil, err
		}
		from := durable.EntityID{Name: "Account", Key: in.From}
		to := durable.EntityID{Name: "Account", Key: in.To}
		lock, err := ctx.LockEntities(from, to)
		if err != nil {
			return nil, err
		}
		defer lock.Release()
		if err := ctx.CallEntity(from, "withdraw", in.Amount).Await(nil); err != nil {
			return "declined", nil
		}
		// Between the two halves of the transfer: a crash here must not
		// lose the withdrawn money.
		if err := ctx.CallActivity("Pause", nil).Await(nil); err != nil {
			return nil, err
		}
		return "done", ctx.CallEntity(to, "deposit", in.Amount).Await(nil)
	}))
	must(rt.RegisterActivity("Pause", func(context.Context) error { time.Sleep(2 * time.Millisecond); return nil }))
}

func TestBankChild(t *testing.T) {
	dir := os.Getenv(bankDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestBankTransfersKilledMidWayKeepEveryCoin")
	}
	rt := open(t, durable.Options{Dir: dir}, registerSlowBank)
	ctx := context.Background()
	for a := 0; a < bankAccounts; a++ {
		if err := rt.Client().SignalEntity(ctx, durable.EntityID{Name: "Account", Key: fmt.Sprint(a)}, "deposit", bankInitial); err != nil {
			os.Exit(3)
		}
	}
	fmt.Println("funded")
	for i := 0; i < bankTransfers; i++ {
		in := transferInput{From: fmt.Sprint(i % bankAccounts), To: fmt.Sprint((i + 1 + i/bankAccounts) % bankAccounts), Amount: 10 + i}
		if in.From == in.To {
			in.To = fmt.Sprint((i + 2) % bankAccounts)
		}
		if i%2 == 1 {
			in.From, in.To = in.To, in.From
		}
		if _, err := rt.Client().Start(ctx, "SlowTransfer", in, durable.WithInstanceID(fmt.Sprint("transfer-", i))); err != nil {
			os.Exit(4)
		}
		fmt.Println("started", i)
	}
	time.Sleep(time.Hour)
}

func TestBankTransfersKilledMidWayKeepEveryCoin(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes")
	}
	for _, delay := range []time.Duration{5 * time.Millisecond, 30 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			dir := t.TempDir()
			runChildAndKill(t, "TestBankChild", bankDirEnv, dir, bankTransfers, delay)

			rt := open(t, durable.Options{Dir: dir}, registerSlowBank)
			finished, _ := rt.Client().List(context.Background(), durable.Query{Statuses: []durable.RuntimeStatus{durable.StatusCompleted}, PageSize: 1000})
			t.Logf("%d of %d transfers had completed at the kill", len(finished.Instances), bankTransfers)
			done := 0
			for i := 0; i < bankTransfers; i++ {
				st := complete(t, rt, fmt.Sprint("transfer-", i))
				if st.RuntimeStatus != durable.StatusCompleted {
					t.Fatalf("transfer-%d: %s %+v", i, st.RuntimeStatus, st.Failure)
				}
				if string(st.Output) == `"done"` {
					done++
				}
			}
			total := 0
			for a := 0; a < bankAccounts; a++ {
				id := durable.EntityID{Name: "Account", Key: fmt.Sprint(a)}
				waitFor(t, "account readable", func() bool {
					_, err := rt.Client().ReadEntityState(context.Background(), id)
					return err == nil
				})
				total += readInt(t, rt, id)
			}
			t.Logf("killed %v after the last start; %d of %d transfers moved money", delay, done, bankTransfers)
			if total != bankAccounts*bankInitial {
				t.Fatalf("money created or lost across the crash: total %d, want %d", total, bankAccounts*bankInitial)
			}
		})
	}
}

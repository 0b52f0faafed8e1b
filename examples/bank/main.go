// Command bank moves money between two Account entities with many
// concurrent transfers in both directions. Each transfer is an
// orchestration that locks both accounts (ctx.LockEntities: a critical
// section), withdraws from one and deposits into the other, then releases
// the locks. No other operation reaches either account in between, so the
// money in flight is never visible and never lost: the program adds the
// balances up before and after and shows that the total is unchanged.
//
//	go run ./examples/bank                     # data in ./bank-data
//	go run ./examples/bank -data DIR -transfers 500 -max-amount 300
//
// The accounts live in the data directory: each run starts from the
// balances the previous one left.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// Account is the entity's state; its exported methods are its operations
// ("deposit", "withdraw", "get").
type Account struct {
	Balance int `json:"balance"`
}

// Deposit adds amount to the balance.
func (a *Account) Deposit(amount int) error {
	if amount < 0 {
		return fmt.Errorf("negative deposit %d", amount)
	}
	a.Balance += amount
	return nil
}

// Withdraw takes amount from the balance, or fails (leaving the balance as
// it was) if the balance is too low.
func (a *Account) Withdraw(amount int) error {
	if amount < 0 {
		return fmt.Errorf("negative withdrawal %d", amount)
	}
	if amount > a.Balance {
		return fmt.Errorf("insufficient funds: balance %d, withdrawal %d", a.Balance, amount)
	}
	a.Balance -= amount
	return nil
}

// Get returns the balance.
func (a *Account) Get() int { return a.Balance }

// EntityName is the name the Account entity is registered under.
const EntityName = "Account"

// AccountID is the id of the account with the given key.
func AccountID(key string) durable.EntityID { return durable.EntityID{Name: EntityName, Key: key} }

// TransferInput is the input of Transfer.
type TransferInput struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount int    `json:"amount"`
}

// Outcomes of a transfer.
const (
	Done     = "done"
	Declined = "declined" // the source account had too little
)

// Transfer moves Amount from one account to the other inside a critical
// section: both accounts are locked (in one global order, so two transfers
// in opposite directions cannot deadlock), and the withdrawal and the
// deposit run with no other operation on either account in between.
func Transfer(ctx *orchestration.Context) (any, error) {
	var in TransferInput
	if err := ctx.Input(&in); err != nil {
		return nil, err
	}
	from, to := AccountID(in.From), AccountID(in.To)
	lock, err := ctx.LockEntities(from, to)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if err := ctx.CallEntity(from, "withdraw", in.Amount).Await(nil); err != nil {
		// The withdrawal failed and was rolled back: nothing moved.
		return Declined, nil
	}
	if err := ctx.CallEntity(to, "deposit", in.Amount).Await(nil); err != nil {
		// Cannot happen for a positive amount; put the money back rather
		// than lose it.
		if rerr := ctx.CallEntity(from, "deposit", in.Amount).Await(nil); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		return nil, err
	}
	return Done, nil
}

// Register registers the Account entity and the Transfer orchestrator.
func Register(rt *durable.Runtime) error {
	account, err := orchestration.EntityFromStruct[Account]()
	if err != nil {
		return err
	}
	if err := rt.RegisterEntity(EntityName, account); err != nil {
		return err
	}
	return rt.RegisterOrchestrator("Transfer", Transfer)
}

// Balance reads the committed balance of an account (0 if it has none).
func Balance(ctx context.Context, client *durable.Client, key string) (int, error) {
	raw, err := client.ReadEntityState(ctx, AccountID(key))
	if errors.Is(err, durable.ErrEntityNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var a Account
	if err := json.Unmarshal(raw, &a); err != nil {
		return 0, fmt.Errorf("state of %s: %w", AccountID(key), err)
	}
	return a.Balance, nil
}

// Balances reads the committed balances of two accounts.
func Balances(ctx context.Context, client *durable.Client, a, b string) (balA, balB int, err error) {
	if balA, err = Balance(ctx, client, a); err != nil {
		return 0, 0, err
	}
	if balB, err = Balance(ctx, client, b); err != nil {
		return 0, 0, err
	}
	return balA, balB, nil
}

// Transfers returns n transfers alternating between a→b and b→a, with
// amounts 1 … maxAmount cycling.
func Transfers(a, b string, n, maxAmount int) []TransferInput {
	ts := make([]TransferInput, n)
	for i := range ts {
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		ts[i] = TransferInput{From: from, To: to, Amount: 1 + (i*37)%maxAmount}
	}
	return ts
}

// StartTransfers starts one Transfer instance per input, from workers
// goroutines, and returns the instance ids in input order.
func StartTransfers(ctx context.Context, client *durable.Client, ts []TransferInput, workers int) ([]string, error) {
	ids := make([]string, len(ts))
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	work := make(chan int)
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				ids[i], errs[i] = client.Start(ctx, "Transfer", ts[i])
			}
		}()
	}
	for i := range ts {
		work <- i
	}
	close(work)
	wg.Wait()
	return ids, errors.Join(errs...)
}

// Outcome counts how the transfers ended.
type Outcome struct {
	Done, Declined int
	Moved          map[string]int // net amount received per account
}

// WaitTransfers waits for every transfer to complete and counts the
// outcomes; any other end (failed, terminated) is an error.
func WaitTransfers(ctx context.Context, client *durable.Client, ids []string, ts []TransferInput) (Outcome, error) {
	o := Outcome{Moved: map[string]int{}}
	for i, id := range ids {
		st, err := client.WaitForCompletion(ctx, id)
		if err != nil {
			return o, err
		}
		var res string
		if st.RuntimeStatus != durable.StatusCompleted {
			return o, fmt.Errorf("transfer %s: %s %v", id, st.RuntimeStatus, st.Failure)
		}
		if err := st.DecodeOutput(&res); err != nil {
			return o, fmt.Errorf("transfer %s: %w", id, err)
		}
		switch res {
		case Done:
			o.Done++
			o.Moved[ts[i].To] += ts[i].Amount
			o.Moved[ts[i].From] -= ts[i].Amount
		case Declined:
			o.Declined++
		default:
			return o, fmt.Errorf("transfer %s: output %q", id, res)
		}
	}
	return o, nil
}

// Settings are what the program does.
type Settings struct {
	A, B      string // the two accounts
	Opening   int    // deposited into an account that has no state yet
	Transfers int
	MaxAmount int
	Workers   int // clients starting transfers concurrently
}

func main() {
	dir := flag.String("data", "bank-data", "directory of the task hub (created if missing)")
	var s Settings
	flag.StringVar(&s.A, "a", "alice", "key of the first account")
	flag.StringVar(&s.B, "b", "bob", "key of the second account")
	flag.IntVar(&s.Opening, "opening", 1000, "opening deposit of an account that does not exist yet")
	flag.IntVar(&s.Transfers, "transfers", 200, "transfers to run, half in each direction")
	flag.IntVar(&s.MaxAmount, "max-amount", 250, "largest amount of a transfer (amounts cycle from 1)")
	flag.IntVar(&s.Workers, "workers", 32, "clients starting transfers concurrently")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(durable.Options{Dir: *dir, Logger: logger}, s, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

// run opens a runtime with opts, opens the accounts if they do not exist,
// runs the transfers concurrently and checks that the total is unchanged,
// printing what happens to out.
func run(opts durable.Options, s Settings, out io.Writer) error {
	if s.A == s.B || s.Transfers < 1 || s.MaxAmount < 1 {
		return errors.New("need two different accounts, a transfer and a positive max amount")
	}
	rt, err := durable.Open(opts)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := Register(rt); err != nil {
		return err
	}
	if err := rt.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := rt.Client()

	for _, k := range []string{s.A, s.B} {
		if _, err := client.ReadEntityState(ctx, AccountID(k)); errors.Is(err, durable.ErrEntityNotFound) {
			fmt.Fprintf(out, "opening account %s with %d\n", k, s.Opening)
			if err := client.SignalEntity(ctx, AccountID(k), "deposit", s.Opening); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	balA, balB, err := Balances(ctx, client, s.A, s.B)
	if err != nil {
		return err
	}
	before, beforeA := balA+balB, balA
	fmt.Fprintf(out, "before: %s %d + %s %d = %d\n", s.A, balA, s.B, balB, before)

	ts := Transfers(s.A, s.B, s.Transfers, s.MaxAmount)
	fmt.Fprintf(out, "%d transfers of 1 … %d, half %s→%s and half %s→%s, started by %d concurrent clients\n",
		len(ts), s.MaxAmount, s.A, s.B, s.B, s.A, s.Workers)
	t0 := time.Now()
	ids, err := StartTransfers(ctx, client, ts, s.Workers)
	if err != nil {
		return err
	}
	o, err := WaitTransfers(ctx, client, ids, ts)
	if err != nil {
		return err
	}
	elapsed := time.Since(t0)
	if balA, balB, err = Balances(ctx, client, s.A, s.B); err != nil {
		return err
	}
	after := balA + balB
	fmt.Fprintf(out, "all %d transfers completed in %v: %d done, %d declined for insufficient funds\n",
		len(ids), elapsed.Round(time.Millisecond), o.Done, o.Declined)
	fmt.Fprintf(out, "after:  %s %d + %s %d = %d\n", s.A, balA, s.B, balB, after)
	if after != before {
		return fmt.Errorf("the total changed from %d to %d: money created or lost", before, after)
	}
	if balA-beforeA != o.Moved[s.A] {
		return fmt.Errorf("%s's balance moved by %+d, the completed transfers say %+d", s.A, balA-beforeA, o.Moved[s.A])
	}
	fmt.Fprintf(out, "the total is unchanged (%s's balance moved by %+d, %s's by %+d)\n", s.A, o.Moved[s.A], s.B, o.Moved[s.B])
	return nil
}

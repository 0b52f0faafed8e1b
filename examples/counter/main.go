// Command counter shows the aggregator pattern of durable entities: a
// Counter entity (a Go struct whose methods are its operations) receives a
// burst of one-way signals from many concurrent clients. Operations of one
// entity run one at a time, in arrival order, so no increment is lost to a
// race; the program reads the state afterwards and shows that every signal
// was applied exactly once. Then an orchestration calls the same counter
// (ctx.CallEntity: request and response, recorded in its history) and reads
// it back.
//
//	go run ./examples/counter                  # data in ./counter-data
//	go run ./examples/counter -data DIR -signals 5000 -clients 64 -key visits
//
// The counter lives in the data directory: run the program twice and the
// second run finds the count of the first before it resets it.
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
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// Counter is the entity's state. Each exported method is an operation,
// matched by name case-insensitively ("add", "reset", "get").
type Counter struct {
	Value int `json:"value"`
}

// Add adds n to the count.
func (c *Counter) Add(n int) { c.Value += n }

// Reset sets the count back to 0.
func (c *Counter) Reset() { c.Value = 0 }

// Get returns the count.
func (c *Counter) Get() int { return c.Value }

// EntityName is the name the Counter entity is registered under.
const EntityName = "Counter"

// CounterID is the id of the counter with the given key.
func CounterID(key string) durable.EntityID { return durable.EntityID{Name: EntityName, Key: key} }

// AddInput is the input of AddAndGet.
type AddInput struct {
	Key    string `json:"key"`
	Amount int    `json:"amount"`
}

// AddAndGet adds Amount to the counter Key and returns the count it reads
// back. Both are calls: the orchestration waits for each result, and
// since the entity runs operations one at a time in arrival order, the get
// sees the add.
func AddAndGet(ctx *orchestration.Context) (any, error) {
	var in AddInput
	if err := ctx.Input(&in); err != nil {
		return nil, err
	}
	id := CounterID(in.Key)
	if err := ctx.CallEntity(id, "add", in.Amount).Await(nil); err != nil {
		return nil, err
	}
	return orchestration.Await[int](ctx.CallEntity(id, "get", nil))
}

// Register registers the Counter entity and the AddAndGet orchestrator.
func Register(rt *durable.Runtime) error {
	counter, err := orchestration.EntityFromStruct[Counter]()
	if err != nil {
		return err
	}
	if err := rt.RegisterEntity(EntityName, counter); err != nil {
		return err
	}
	return rt.RegisterOrchestrator("AddAndGet", AddAndGet)
}

// ReadCount reads the committed count of the counter key (0 if it has no
// state yet).
func ReadCount(ctx context.Context, client *durable.Client, key string) (int, error) {
	raw, err := client.ReadEntityState(ctx, CounterID(key))
	if errors.Is(err, durable.ErrEntityNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var c Counter
	if err := json.Unmarshal(raw, &c); err != nil {
		return 0, fmt.Errorf("state of %s: %w", CounterID(key), err)
	}
	return c.Value, nil
}

// Settings are what the program does.
type Settings struct {
	Key     string // the counter's key
	Signals int    // add signals in the burst: add(1), add(2), …, add(Signals)
	Clients int    // goroutines sending them concurrently
	Call    int    // what the orchestration adds
}

// Report is what run observed.
type Report struct {
	Before    int // the count found at the start (left by an earlier run)
	Want      int // 1 + 2 + … + Signals
	Burst     int // the count after the burst
	Called    int // what AddAndGet returned
	Final     int // the count read by the client at the end
	Instance  string
	BurstTime time.Duration
}

func main() {
	dir := flag.String("data", "counter-data", "directory of the task hub (created if missing)")
	var s Settings
	flag.StringVar(&s.Key, "key", "visits", "key of the counter")
	flag.IntVar(&s.Signals, "signals", 2000, "add signals to send: add(1), add(2), …, add(signals)")
	flag.IntVar(&s.Clients, "clients", 32, "concurrent clients sending them")
	flag.IntVar(&s.Call, "call", 10, "amount the orchestration adds with a call")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := run(durable.Options{Dir: *dir, Logger: logger}, s, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

// run opens a runtime with opts, resets the counter, sends the burst of
// signals, checks the count, runs AddAndGet and checks again, printing what
// happens to out.
func run(opts durable.Options, s Settings, out io.Writer) (*Report, error) {
	if s.Signals < 1 || s.Clients < 1 {
		return nil, errors.New("need at least one signal and one client")
	}
	rt, err := durable.Open(opts)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	if err := Register(rt); err != nil {
		return nil, err
	}
	if err := rt.Start(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := rt.Client()
	id := CounterID(s.Key)
	rep := &Report{Want: s.Signals * (s.Signals + 1) / 2}

	if rep.Before, err = ReadCount(ctx, client, s.Key); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "counter %s holds %d; signalling reset\n", id, rep.Before)
	if err := client.SignalEntity(ctx, id, "reset", nil); err != nil {
		return nil, err
	}

	// The burst: Clients goroutines send add(1) … add(Signals) between
	// them. SignalEntity returns once the signal is durable.
	fmt.Fprintf(out, "%d clients send %d signals add(1) … add(%d) concurrently\n", s.Clients, s.Signals, s.Signals)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		sendErr error
	)
	start := time.Now()
	for range s.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1))
				if n > s.Signals {
					return
				}
				if err := client.SignalEntity(ctx, id, "add", n); err != nil {
					errOnce.Do(func() { sendErr = fmt.Errorf("signal add(%d): %w", n, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	rep.BurstTime = time.Since(start)
	if sendErr != nil {
		return rep, sendErr
	}
	if rep.Burst, err = ReadCount(ctx, client, s.Key); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "sent in %v (%.0f signals/s); count %d, expected 1+2+…+%d = %d\n",
		rep.BurstTime.Round(time.Millisecond), float64(s.Signals)/rep.BurstTime.Seconds(), rep.Burst, s.Signals, rep.Want)
	if rep.Burst != rep.Want {
		return rep, fmt.Errorf("count %d after the burst, want %d: signals lost or applied twice", rep.Burst, rep.Want)
	}
	fmt.Fprintln(out, "every signal was applied exactly once")

	rep.Instance, err = client.Start(ctx, "AddAndGet", AddInput{Key: s.Key, Amount: s.Call})
	if err != nil {
		return rep, err
	}
	st, err := client.WaitForCompletion(ctx, rep.Instance)
	if err != nil {
		return rep, err
	}
	if st.RuntimeStatus != durable.StatusCompleted {
		return rep, fmt.Errorf("instance %s: %s %v", rep.Instance, st.RuntimeStatus, st.Failure)
	}
	if err := st.DecodeOutput(&rep.Called); err != nil {
		return rep, err
	}
	if rep.Final, err = ReadCount(ctx, client, s.Key); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "orchestration %s called add(%d) then get: %d; the client reads %d\n", rep.Instance, s.Call, rep.Called, rep.Final)
	if rep.Called != rep.Want+s.Call || rep.Final != rep.Called {
		return rep, fmt.Errorf("after add(%d): orchestration got %d, client read %d, want %d", s.Call, rep.Called, rep.Final, rep.Want+s.Call)
	}
	return rep, nil
}

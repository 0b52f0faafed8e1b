// Command versioning shows how to change the code of an orchestrator while
// instances of it run (see VERSIONING.md). An order workflow charges the
// customer and waits for the Shipped event. Version 2 adds a step, a
// receipt after the charge, guarded by ctx.IsPatched("send-receipt"):
//
//  1. v1 starts an order, which charges and then waits for the event.
//  2. Before deploying v2, CheckRunning replays the running instances
//     against v2 on a copy of the store: once without the guard (it would
//     fail) and once with it (fine).
//  3. v2 is "deployed": the runtime reopens on the same directory with the
//     new code and starts a second order.
//  4. Both orders get their event. The old one finishes on the old path, the
//     new one on the new path, and only the new one's history holds the
//     PatchMarker.
//
// Run it with:
//
//	go run ./examples/versioning               # data in ./versioning-data
//	go run ./examples/versioning -data DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

// EventName is the external event an order waits for.
const EventName = "Shipped"

// Order is the input of the Order orchestrator.
type Order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// OrderV1 is the first version: charge, then wait for the shipment.
func OrderV1(ctx *orchestration.Context) (any, error) {
	var o Order
	if err := ctx.Input(&o); err != nil {
		return nil, err
	}
	steps := []string{}
	var s string
	if err := ctx.CallActivity("Charge", o).Await(&s); err != nil {
		return nil, err
	}
	steps = append(steps, s)
	_ = ctx.SetCustomStatus("awaiting shipment")
	if err := ctx.WaitForExternalEvent(EventName).Await(nil); err != nil {
		return nil, err
	}
	return append(steps, "shipped"), nil
}

// OrderV2 is the second version: it sends a receipt after the charge. The
// new step is guarded by IsPatched, so an instance that v1 started (its
// history has no marker there) replays and goes on along the old path.
func OrderV2(ctx *orchestration.Context) (any, error) {
	var o Order
	if err := ctx.Input(&o); err != nil {
		return nil, err
	}
	steps := []string{}
	var s string
	if err := ctx.CallActivity("Charge", o).Await(&s); err != nil {
		return nil, err
	}
	steps = append(steps, s)
	if ctx.IsPatched("send-receipt") {
		if err := ctx.CallActivity("SendReceipt", o).Await(&s); err != nil {
			return nil, err
		}
		steps = append(steps, s)
	}
	_ = ctx.SetCustomStatus("awaiting shipment")
	if err := ctx.WaitForExternalEvent(EventName).Await(nil); err != nil {
		return nil, err
	}
	return append(steps, "shipped"), nil
}

// orderV2Unguarded is the same change made without the guard: what not to
// deploy. Replaying a v1 history, it asks for SendReceipt where history
// holds nothing more: v1 waited there.
func orderV2Unguarded(ctx *orchestration.Context) (any, error) {
	var o Order
	if err := ctx.Input(&o); err != nil {
		return nil, err
	}
	steps := []string{}
	var s string
	if err := ctx.CallActivity("Charge", o).Await(&s); err != nil {
		return nil, err
	}
	steps = append(steps, s)
	if err := ctx.CallActivity("SendReceipt", o).Await(&s); err != nil {
		return nil, err
	}
	steps = append(steps, s)
	_ = ctx.SetCustomStatus("awaiting shipment")
	if err := ctx.WaitForExternalEvent(EventName).Await(nil); err != nil {
		return nil, err
	}
	return append(steps, "shipped"), nil
}

// Charge stands for charging the customer.
func Charge(_ context.Context, o Order) (string, error) {
	return fmt.Sprintf("charged %d", o.Amount), nil
}

// SendReceipt stands for emailing the customer a receipt.
func SendReceipt(_ context.Context, o Order) (string, error) {
	return "receipt sent for " + o.ID, nil
}

// Register registers orchestrator as "Order", with its activities.
func Register(rt *durable.Runtime, orchestrator orchestration.Orchestrator) error {
	if err := rt.RegisterOrchestrator("Order", orchestrator); err != nil {
		return err
	}
	if err := rt.RegisterActivity("Charge", Charge); err != nil {
		return err
	}
	return rt.RegisterActivity("SendReceipt", SendReceipt)
}

func main() {
	dir := flag.String("data", "versioning-data", "directory of the task hub (created if missing)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := run(*dir, logger, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "versioning:", err)
		os.Exit(1)
	}
}

// Result is what run observed.
type Result struct {
	// Unguarded and Guarded are the reports of CheckRunning against v2
	// without and with the IsPatched guard.
	Unguarded, Guarded *durable.ReplayReport
	// OldOutput and NewOutput are the outputs of the order v1 started and
	// of the one v2 started; OldMarkers and NewMarkers the PatchMarker
	// names in their histories.
	OldOutput, NewOutput   []string
	OldMarkers, NewMarkers []string
}

// run goes through the four steps on the task hub in dir and prints what
// happens to out.
func run(dir string, logger *slog.Logger, out io.Writer) (*Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := durable.Options{Dir: dir, Logger: logger}
	suffix := time.Now().Format("150405.000")
	res := &Result{}

	fmt.Fprintln(out, "1. v1 is running: start an order, which charges and waits for", EventName)
	rt, err := open(opts, OrderV1)
	if err != nil {
		return nil, err
	}
	oldID, err := startOrder(ctx, rt.Client(), Order{ID: "order-1-" + suffix, Amount: 42})
	if err == nil {
		fmt.Fprintf(out, "   %s is waiting\n", oldID)
	}
	if cerr := rt.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	fmt.Fprintln(out, "2. before deploying v2: CheckRunning on a copy of the store")
	for _, c := range []struct {
		label string
		code  orchestration.Orchestrator
		into  **durable.ReplayReport
	}{
		{"v2 without the IsPatched guard", orderV2Unguarded, &res.Unguarded},
		{"v2 with IsPatched(\"send-receipt\")", OrderV2, &res.Guarded},
	} {
		report, err := check(ctx, opts, c.code)
		if err != nil {
			return nil, err
		}
		*c.into = report
		verdict := "deploy"
		if !report.OK() {
			verdict = "do not deploy"
		}
		fmt.Fprintf(out, "   %s: %s\n%s", c.label, verdict, indent(report.String()))
	}

	fmt.Fprintln(out, "3. deploy v2: reopen the same directory with the new code, start a new order")
	rt, err = open(opts, OrderV2)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	client := rt.Client()
	newID, err := startOrder(ctx, client, Order{ID: "order-2-" + suffix, Amount: 7})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "   %s is waiting\n", newID)

	fmt.Fprintln(out, "4. both orders ship")
	for _, o := range []struct {
		id      string
		output  *[]string
		markers *[]string
	}{{oldID, &res.OldOutput, &res.OldMarkers}, {newID, &res.NewOutput, &res.NewMarkers}} {
		if err := client.RaiseEvent(ctx, o.id, EventName, nil); err != nil {
			return nil, err
		}
		st, err := client.WaitForCompletion(ctx, o.id)
		if err != nil {
			return nil, err
		}
		if st.Failure != nil {
			return nil, fmt.Errorf("instance %s failed: %s", o.id, st.Failure.Error())
		}
		if err := st.DecodeOutput(o.output); err != nil {
			return nil, err
		}
		if *o.markers, err = patchMarkers(ctx, client, o.id); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "   %s: %s; patch markers in history: %v\n", o.id, strings.Join(*o.output, ", "), *o.markers)
	}
	return res, nil
}

// open opens a runtime with opts, registers orchestrator as "Order" and
// starts it.
func open(opts durable.Options, orchestrator orchestration.Orchestrator) (*durable.Runtime, error) {
	rt, err := durable.Open(opts)
	if err != nil {
		return nil, err
	}
	if err := Register(rt, orchestrator); err != nil {
		rt.Close()
		return nil, err
	}
	if err := rt.Start(); err != nil {
		rt.Close()
		return nil, err
	}
	return rt, nil
}

// check copies the (closed) store in opts.Dir to a temporary directory,
// opens it with orchestrator registered and returns CheckRunning's report.
// The copy matters: Start replays the instances with pending work at once.
func check(ctx context.Context, opts durable.Options, orchestrator orchestration.Orchestrator) (*durable.ReplayReport, error) {
	tmp, err := os.MkdirTemp("", "versioning-check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := copyDir(opts.Dir, tmp); err != nil {
		return nil, err
	}
	opts.Dir = tmp
	rt, err := open(opts, orchestrator)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	return rt.CheckRunning(ctx)
}

// startOrder starts an Order instance for o under o.ID and waits until it
// has charged and waits for the shipment.
func startOrder(ctx context.Context, client *durable.Client, o Order) (string, error) {
	id, err := client.Start(ctx, "Order", o, durable.WithInstanceID(o.ID))
	if err != nil {
		return "", err
	}
	for {
		st, err := client.Status(ctx, id)
		if err != nil {
			return "", err
		}
		if string(st.CustomStatus) == `"awaiting shipment"` {
			return id, nil
		}
		if st.RuntimeStatus.IsTerminal() {
			return "", fmt.Errorf("instance %s ended (%s) before waiting", id, st.RuntimeStatus)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// patchMarkers returns the names of the PatchMarker events in id's history.
func patchMarkers(ctx context.Context, client *durable.Client, id string) ([]string, error) {
	events, err := client.History(ctx, id)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, ev := range events {
		if ev.Type == history.PatchMarker {
			names = append(names, ev.Name)
		}
	}
	return names, nil
}

// copyDir copies the files under src into dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "     " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n     ") + "\n"
}

// Command versions shows versioned orchestrators (see VERSIONING.md): a
// new version of an order workflow is deployed beside the old one instead
// of being patched into it, and each instance runs the version it started
// on until it ends.
//
//  1. The first deployment has Order unversioned: it charges, then waits
//     for the Shipped event. An order starts and waits.
//  2. A deployment that registers only Order version "2" is refused by
//     Start(durable.CheckRunningFirst()): the waiting order recorded no
//     version, and its code would be gone.
//  3. The second deployment keeps the old code and adds version "2" (which
//     sends a receipt after the charge), the default for new orders; the
//     check passes, and a new order starts on version 2.
//  4. Both orders ship: the old one finishes on the old code, the new one
//     on version 2, and each status shows its version.
//
// Run it with:
//
//	go run ./examples/versions               # data in ./versions-data
//	go run ./examples/versions -data DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// EventName is the external event an order waits for.
const EventName = "Shipped"

// OrderV1 charges, then waits for the shipment.
func OrderV1(ctx *orchestration.Context) (any, error) {
	var id string
	if err := ctx.Input(&id); err != nil {
		return nil, err
	}
	steps, err := call(ctx, nil, "Charge", id)
	if err != nil {
		return nil, err
	}
	_ = ctx.SetCustomStatus("awaiting shipment")
	if err := ctx.WaitForExternalEvent(EventName).Await(nil); err != nil {
		return nil, err
	}
	return append(steps, "shipped"), nil
}

// OrderV2 is version "2": it sends a receipt after the charge. It is new
// code under the same name, with no IsPatched guard: no history of the old
// code is ever replayed against it.
func OrderV2(ctx *orchestration.Context) (any, error) {
	var id string
	if err := ctx.Input(&id); err != nil {
		return nil, err
	}
	steps, err := call(ctx, nil, "Charge", id)
	if err != nil {
		return nil, err
	}
	if steps, err = call(ctx, steps, "SendReceipt", id); err != nil {
		return nil, err
	}
	_ = ctx.SetCustomStatus("awaiting shipment")
	if err := ctx.WaitForExternalEvent(EventName).Await(nil); err != nil {
		return nil, err
	}
	return append(steps, "shipped on version "+ctx.Version()), nil
}

func call(ctx *orchestration.Context, steps []string, activity, id string) ([]string, error) {
	s, err := orchestration.Await[string](ctx.CallActivity(activity, id))
	if err != nil {
		return nil, err
	}
	return append(steps, s), nil
}

// registerActivities registers the activities both versions call.
func registerActivities(rt *durable.Runtime) error {
	if err := rt.RegisterActivity("Charge", func(_ context.Context, id string) (string, error) {
		return "charged " + id, nil
	}); err != nil {
		return err
	}
	return rt.RegisterActivity("SendReceipt", func(_ context.Context, id string) (string, error) {
		return "receipt for " + id, nil
	})
}

func main() {
	dir := flag.String("data", "versions-data", "directory of the task hub (created if missing)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if _, err := run(*dir, logger, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "versions:", err)
		os.Exit(1)
	}
}

// Result is what run observed.
type Result struct {
	// Refused is the report of the deployment that dropped the old code.
	Refused *durable.ReplayReport
	// Old and New are the final statuses of the order started before and
	// after version 2 was deployed.
	Old, New *durable.Status
}

// run goes through the four steps on the task hub in dir and prints what
// happens to out.
func run(dir string, logger *slog.Logger, out io.Writer) (*Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := durable.Options{Dir: dir, Logger: logger}
	suffix := time.Now().Format("150405.000")
	oldID, newID := "order-1-"+suffix, "order-2-"+suffix
	res := &Result{}

	fmt.Fprintln(out, "1. Order is unversioned: start an order, which charges and waits for", EventName)
	rt, err := deploy(opts, func(rt *durable.Runtime) error { return rt.RegisterOrchestrator("Order", OrderV1) })
	if err != nil {
		return nil, err
	}
	if err := startAndWait(ctx, rt, oldID); err != nil {
		rt.Close()
		return nil, err
	}
	if err := rt.Close(); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "   %s waits\n", oldID)

	fmt.Fprintln(out, `2. deploy only Order version "2": Start(CheckRunningFirst()) refuses`)
	_, err = deploy(opts, func(rt *durable.Runtime) error {
		return rt.RegisterOrchestrator("Order", OrderV2, durable.Version("2"))
	})
	var refused *durable.ReplayCheckError
	if !errors.As(err, &refused) {
		return nil, fmt.Errorf("the deployment without the old code was not refused: %v", err)
	}
	res.Refused = refused.Report
	fmt.Fprint(out, indent(refused.Report.String()))

	fmt.Fprintln(out, `3. deploy the old code and version "2" beside it: the check passes; a new order starts on version 2`)
	rt, err = deploy(opts, func(rt *durable.Runtime) error {
		if err := rt.RegisterOrchestrator("Order", OrderV1); err != nil {
			return err
		}
		return rt.RegisterOrchestrator("Order", OrderV2, durable.Version("2"))
	})
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	if err := startAndWait(ctx, rt, newID); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "   %s waits\n", newID)

	fmt.Fprintln(out, "4. both orders ship")
	for _, o := range []struct {
		id   string
		into **durable.Status
	}{{oldID, &res.Old}, {newID, &res.New}} {
		if err := rt.Client().RaiseEvent(ctx, o.id, EventName, nil); err != nil {
			return nil, err
		}
		st, err := rt.Client().WaitForCompletion(ctx, o.id)
		if err != nil {
			return nil, err
		}
		if st.Failure != nil {
			return nil, fmt.Errorf("instance %s failed: %s", o.id, st.Failure.Error())
		}
		*o.into = st
		version := st.Version
		if version == "" {
			version = "(unversioned)"
		}
		fmt.Fprintf(out, "   %s: version %s, output %s\n", o.id, version, st.Output)
	}
	return res, nil
}

// deploy opens the hub with the orchestrators register registers and the
// activities, and starts it only if every running instance replays on
// that code.
func deploy(opts durable.Options, register func(rt *durable.Runtime) error) (*durable.Runtime, error) {
	rt, err := durable.Open(opts)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(register(rt), registerActivities(rt)); err != nil {
		rt.Close()
		return nil, err
	}
	if err := rt.Start(durable.CheckRunningFirst()); err != nil {
		rt.Close()
		return nil, err
	}
	return rt, nil
}

// startAndWait starts order id on the default version and returns once
// it waits for its event.
func startAndWait(ctx context.Context, rt *durable.Runtime, id string) error {
	if _, err := rt.Client().Start(ctx, "Order", id, durable.WithInstanceID(id)); err != nil {
		return err
	}
	for {
		st, err := rt.Client().Status(ctx, id)
		if err != nil {
			return err
		}
		if string(st.CustomStatus) == `"awaiting shipment"` {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to await its shipment: %w", id, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// indent indents every line of s by three spaces.
func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "   " + l
		}
	}
	return strings.Join(lines, "")
}

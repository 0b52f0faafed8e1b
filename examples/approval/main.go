// Command approval shows the human interaction pattern of Durable Functions:
// an orchestrator asks a person for an approval and waits for the answer, an
// external event raised from outside (Client.RaiseEvent), racing it against
// a durable timer with WhenAny. If the approver does not answer in time, it
// escalates to a manager (the Escalate activity) and waits once more; if
// nobody answers then either, the request expires. A waiting instance holds
// no goroutine and survives restarts: the timer and the event are durable.
//
//	go run ./examples/approval                       # data in ./approval-data
//	go run ./examples/approval -data DIR -timeout 5s -delay 1s -short-timeout 200ms
//
// The program runs three requests: one the approver answers after -delay
// (within -timeout); one with -short-timeout that nobody answers, so it is
// escalated and the manager answers; and one that nobody ever answers.
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
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// EventName is the name of the external event that carries the answer.
const EventName = "Approval"

// Request is the input of the Approval orchestrator.
type Request struct {
	ID       string        `json:"id"`
	Item     string        `json:"item"`
	Amount   int           `json:"amount"`
	Approver string        `json:"approver"`
	Manager  string        `json:"manager"` // escalated to when the approver does not answer
	Timeout  time.Duration `json:"timeout"` // how long each of them has to answer
}

// Answer is the payload of the Approval event.
type Answer struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"`
}

// Decision is the output of the Approval orchestrator.
type Decision struct {
	RequestID string `json:"requestId"`
	Outcome   string `json:"outcome"` // Approved, Rejected or Expired
	By        string `json:"by,omitempty"`
	Escalated bool   `json:"escalated"`
}

// Notice is the input of the RequestApproval and Escalate activities.
type Notice struct {
	To      string `json:"to"`
	Request string `json:"request"`
}

// Approval asks for an approval and waits for the answer, escalating once.
func Approval(ctx *orchestration.Context) (any, error) {
	var req Request
	if err := ctx.Input(&req); err != nil {
		return nil, err
	}
	summary := fmt.Sprintf("%s: %s for %d", req.ID, req.Item, req.Amount)
	if err := ctx.CallActivity("RequestApproval", Notice{To: req.Approver, Request: summary}).Await(nil); err != nil {
		return nil, err
	}
	_ = ctx.SetCustomStatus("waiting for " + req.Approver)
	decision := Decision{RequestID: req.ID}

	// Each round waits with a timeout; a wait that timed out is withdrawn,
	// so the answer goes to the next one.
	var a Answer
	err := ctx.WaitForExternalEvent(EventName, orchestration.WithTimeout(req.Timeout)).Await(&a)
	if errors.Is(err, orchestration.ErrTimeout) {
		decision.Escalated = true
		if err := ctx.CallActivity("Escalate", Notice{To: req.Manager, Request: summary}).Await(nil); err != nil {
			return nil, err
		}
		_ = ctx.SetCustomStatus("escalated to " + req.Manager)
		err = ctx.WaitForExternalEvent(EventName, orchestration.WithTimeout(req.Timeout)).Await(&a)
		if errors.Is(err, orchestration.ErrTimeout) {
			_ = ctx.SetCustomStatus("expired")
			decision.Outcome = "Expired"
			return decision, nil
		}
	}
	if err != nil {
		return nil, err
	}
	decision.By = a.By
	decision.Outcome = "Rejected"
	if a.Approved {
		decision.Outcome = "Approved"
	}
	_ = ctx.SetCustomStatus(decision.Outcome)
	return decision, nil
}

// RequestApproval stands for sending the approver a message with links to
// approve or reject (which would raise the Approval event).
func RequestApproval(_ context.Context, n Notice) (string, error) {
	return fmt.Sprintf("asked %s to approve %s", n.To, n.Request), nil
}

// Escalate stands for paging the manager.
func Escalate(_ context.Context, n Notice) (string, error) {
	return fmt.Sprintf("escalated %s to %s", n.Request, n.To), nil
}

// Register registers the orchestrator "Approval" and its activities.
func Register(rt *durable.Runtime) error {
	if err := rt.RegisterOrchestrator("Approval", Approval); err != nil {
		return err
	}
	if err := rt.RegisterActivity("RequestApproval", RequestApproval); err != nil {
		return err
	}
	return rt.RegisterActivity("Escalate", Escalate)
}

func main() {
	dir := flag.String("data", "approval-data", "directory of the task hub (created if missing)")
	timeout := flag.Duration("timeout", 3*time.Second, "how long the approver has to answer in the first request")
	delay := flag.Duration("delay", 500*time.Millisecond, "when the approver answers the first request")
	short := flag.Duration("short-timeout", 300*time.Millisecond, "how long each person has in the requests that escalate")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(durable.Options{Dir: *dir, Logger: logger}, *timeout, *delay, *short, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "approval:", err)
		os.Exit(1)
	}
}

// run opens a runtime with opts, runs the three requests and prints what
// happened to out.
func run(opts durable.Options, timeout, delay, short time.Duration, out io.Writer) error {
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
	ctx, cancel := context.WithTimeout(context.Background(), timeout+delay+4*short+time.Minute)
	defer cancel()
	client := rt.Client()
	suffix := time.Now().Format("150405.000")

	fmt.Fprintf(out, "1. the approver answers after %v (timeout %v)\n", delay, timeout)
	d, err := scenario(ctx, client, out, Request{ID: "PO-1-" + suffix, Item: "laptop", Amount: 1800, Approver: "alice", Manager: "carol", Timeout: timeout},
		func(id string) error {
			time.Sleep(delay)
			fmt.Fprintln(out, "   alice approves")
			return client.RaiseEvent(ctx, id, EventName, Answer{Approved: true, By: "alice"})
		})
	if err != nil {
		return err
	}
	printDecision(out, d)

	fmt.Fprintf(out, "2. nobody answers within %v: escalated, then the manager answers\n", short)
	d, err = scenario(ctx, client, out, Request{ID: "PO-2-" + suffix, Item: "server", Amount: 12000, Approver: "bob", Manager: "carol", Timeout: short},
		func(id string) error {
			if err := waitForCustomStatus(ctx, client, id, `"escalated to carol"`); err != nil {
				return err
			}
			fmt.Fprintln(out, "   carol rejects")
			return client.RaiseEvent(ctx, id, EventName, Answer{Approved: false, By: "carol"})
		})
	if err != nil {
		return err
	}
	printDecision(out, d)

	fmt.Fprintf(out, "3. nobody ever answers (timeout %v each)\n", short)
	d, err = scenario(ctx, client, out, Request{ID: "PO-3-" + suffix, Item: "chair", Amount: 300, Approver: "bob", Manager: "carol", Timeout: short}, nil)
	if err != nil {
		return err
	}
	printDecision(out, d)
	return nil
}

// scenario starts an Approval instance for req (under the request's id),
// runs act (the people's side) if not nil, and waits for the decision.
func scenario(ctx context.Context, client *durable.Client, out io.Writer, req Request, act func(id string) error) (*Decision, error) {
	id, err := client.Start(ctx, "Approval", req, durable.WithInstanceID(req.ID))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "   started instance %s: %s asked to approve %s for %d\n", id, req.Approver, req.Item, req.Amount)
	if act != nil {
		if err := act(id); err != nil {
			return nil, err
		}
	}
	st, err := client.WaitForCompletion(ctx, id)
	if err != nil {
		return nil, err
	}
	if st.Failure != nil {
		return nil, fmt.Errorf("instance %s failed: %s", id, st.Failure.Error())
	}
	var d Decision
	if err := st.DecodeOutput(&d); err != nil {
		return nil, err
	}
	return &d, nil
}

// waitForCustomStatus polls the instance's custom status until it is want
// (JSON).
func waitForCustomStatus(ctx context.Context, client *durable.Client, id, want string) error {
	for {
		st, err := client.Status(ctx, id)
		if err != nil {
			return err
		}
		if string(st.CustomStatus) == want {
			return nil
		}
		if st.RuntimeStatus.IsTerminal() {
			return fmt.Errorf("instance %s ended (%s) with custom status %s, not %s", id, st.RuntimeStatus, st.CustomStatus, want)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func printDecision(out io.Writer, d *Decision) {
	b, _ := json.Marshal(d)
	fmt.Fprintf(out, "   decision: %s\n", b)
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
)

func startRuntime(t *testing.T) *durable.Client {
	t.Helper()
	rt, err := durable.Open(durable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	if err := Register(rt); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	return rt.Client()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func decide(t *testing.T, client *durable.Client, id string) (*durable.Status, Decision) {
	t.Helper()
	st, err := client.WaitForCompletion(testCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	var d Decision
	if err := st.DecodeOutput(&d); err != nil {
		t.Fatalf("%s %v %+v", st.RuntimeStatus, err, st.Failure)
	}
	return st, d
}

func TestApprovedInTimeDoesNotWaitForTheTimer(t *testing.T) {
	client := startRuntime(t)
	ctx := testCtx(t)
	req := Request{ID: "r1", Item: "laptop", Amount: 1, Approver: "alice", Manager: "carol", Timeout: time.Hour}
	id, err := client.Start(ctx, "Approval", req, durable.WithInstanceID(req.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitForCustomStatus(ctx, client, id, `"waiting for alice"`); err != nil {
		t.Fatal(err)
	}
	if err := client.RaiseEvent(ctx, id, EventName, Answer{Approved: true, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	st, d := decide(t, client, id)
	if d != (Decision{RequestID: "r1", Outcome: "Approved", By: "alice"}) || string(st.CustomStatus) != `"Approved"` {
		t.Fatalf("%+v %s", d, st.CustomStatus)
	}
	// The hour-long timer did not decide it: the outcome is alice's.
}

func TestAnswerRaisedBeforeTheWaitIsBuffered(t *testing.T) {
	client := startRuntime(t)
	ctx := testCtx(t)
	req := Request{ID: "early", Approver: "alice", Manager: "carol", Timeout: time.Hour}
	id, _ := client.Start(ctx, "Approval", req, durable.WithInstanceID(req.ID))
	if err := client.RaiseEvent(ctx, id, EventName, Answer{Approved: false, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, d := decide(t, client, id); d.Outcome != "Rejected" || d.By != "alice" || d.Escalated {
		t.Fatalf("%+v", d)
	}
}

func TestTimeoutEscalatesAndTheManagerAnswers(t *testing.T) {
	client := startRuntime(t)
	ctx := testCtx(t)
	req := Request{ID: "r2", Approver: "bob", Manager: "carol", Timeout: 50 * time.Millisecond}
	id, _ := client.Start(ctx, "Approval", req, durable.WithInstanceID(req.ID))
	if err := waitForCustomStatus(ctx, client, id, `"escalated to carol"`); err != nil {
		t.Fatal(err)
	}
	if err := client.RaiseEvent(ctx, id, EventName, Answer{Approved: true, By: "carol"}); err != nil {
		t.Fatal(err)
	}
	if _, d := decide(t, client, id); d != (Decision{RequestID: "r2", Outcome: "Approved", By: "carol", Escalated: true}) {
		t.Fatalf("%+v", d)
	}
}

func TestNoAnswerExpiresAfterOneEscalation(t *testing.T) {
	client := startRuntime(t)
	ctx := testCtx(t)
	req := Request{ID: "r3", Approver: "bob", Manager: "carol", Timeout: 50 * time.Millisecond}
	id, _ := client.Start(ctx, "Approval", req, durable.WithInstanceID(req.ID))
	st, d := decide(t, client, id)
	if d != (Decision{RequestID: "r3", Outcome: "Expired", Escalated: true}) || string(st.CustomStatus) != `"expired"` {
		t.Fatalf("%+v %s", d, st.CustomStatus)
	}
	events, err := client.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var scheduled []string
	for _, ev := range events {
		if ev.Type == history.TaskScheduled {
			scheduled = append(scheduled, ev.Name)
		}
	}
	if strings.Join(scheduled, ",") != "RequestApproval,Escalate" {
		t.Fatalf("activities %v", scheduled)
	}
}

func TestRunShowsTheThreeOutcomes(t *testing.T) {
	var out bytes.Buffer
	if err := run(durable.Options{}, time.Second, 20*time.Millisecond, 50*time.Millisecond, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"outcome":"Approved","by":"alice","escalated":false`, `"outcome":"Rejected","by":"carol","escalated":true`, `"outcome":"Expired","escalated":true`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

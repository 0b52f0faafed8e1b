package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

// process runs one order on fresh backends and returns its result.
func process(t *testing.T, in Input) (*durable.Status, Result) {
	t.Helper()
	backends = NewBackends()
	rt, err := durable.Open(durable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := Register(rt); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := rt.Client().Start(ctx, "ProcessOrder", in, durable.WithInstanceID(in.Order.ID))
	if err != nil {
		t.Fatal(err)
	}
	st, err := rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if st.RuntimeStatus == durable.StatusCompleted {
		if err := st.DecodeOutput(&res); err != nil {
			t.Fatal(err)
		}
	}
	return st, res
}

func order(id string, quantity, price int) Order {
	return Order{ID: id, Customer: "ada", Item: "widget", Quantity: quantity, UnitPrice: price}
}

func count(log []string, substr string) int {
	n := 0
	for _, line := range log {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

func TestOrderGoesThroughAfterChargeRetries(t *testing.T) {
	st, res := process(t, Input{Order: order("o1", 2, 500), ChargeFailures: 2, RetryInterval: 10 * time.Millisecond})
	if st.RuntimeStatus != durable.StatusCompleted || res.Status != "Completed" || res.Tracking != "TRK-o1" || res.PaymentID != "PAY-o1" || len(res.Compensated) != 0 {
		t.Fatalf("%s %+v %+v", st.RuntimeStatus, res, st.Failure)
	}
	if backends.Stock["widget"] != 8 || backends.Charged["o1"] != 1000 || len(backends.Refunded) != 0 {
		t.Fatalf("backends %+v", backends)
	}
	if n := count(backends.Log, "timed out"); n != 2 {
		t.Fatalf("%d charge timeouts, want 2: %v", n, backends.Log)
	}
}

func TestShippingFailureCompensatesInReverseOrder(t *testing.T) {
	st, res := process(t, Input{Order: order("o2", 3, 1999), FailShipping: true, ChargeFailures: 1, RetryInterval: 10 * time.Millisecond})
	want := []string{"refunded PAY-o2 ($59.97)", "restocked 3 × widget"}
	if res.Status != "Compensated" || strings.Join(res.Compensated, "|") != strings.Join(want, "|") ||
		!strings.HasPrefix(res.Error, "create shipment: carrier rejected") {
		t.Fatalf("%s %+v", st.RuntimeStatus, res)
	}
	if backends.Stock["widget"] != 10 || len(backends.Reserved) != 0 || backends.Refunded["o2"] != 5997 || len(backends.Shipments) != 0 {
		t.Fatalf("backends %+v", backends)
	}
	if last := backends.Log[len(backends.Log)-1]; !strings.HasPrefix(last, "warehouse: restocked") {
		t.Fatalf("restock must come last: %v", backends.Log)
	}
}

func TestDeclinedChargeIsNotRetriedAndReleasesTheStock(t *testing.T) {
	_, res := process(t, Input{Order: order("o3", 1, 0), RetryInterval: 10 * time.Millisecond})
	if res.Status != "Compensated" || strings.Join(res.Compensated, "|") != "restocked 1 × widget" || res.Error != "charge customer: card declined: invalid amount" {
		t.Fatalf("%+v", res)
	}
	if backends.Stock["widget"] != 10 || len(backends.Charged) != 0 || count(backends.Log, "declined") != 1 {
		t.Fatalf("backends %+v", backends)
	}
}

func TestChargeGivesUpAfterFourAttempts(t *testing.T) {
	_, res := process(t, Input{Order: order("o4", 1, 100), ChargeFailures: 10, RetryInterval: 5 * time.Millisecond})
	if res.Status != "Compensated" || !strings.Contains(res.Error, "attempt 4") || strings.Join(res.Compensated, "|") != "restocked 1 × widget" {
		t.Fatalf("%+v", res)
	}
	if n := count(backends.Log, "timed out"); n != 4 {
		t.Fatalf("%d attempts, want 4", n)
	}
}

func TestOutOfStockIsRejectedWithNothingToUndo(t *testing.T) {
	_, res := process(t, Input{Order: order("o5", 11, 100)})
	if res.Status != "Rejected" || len(res.Compensated) != 0 || res.Error != "check inventory: only 10 × widget in stock, 11 ordered" {
		t.Fatalf("%+v", res)
	}
}

func TestRunPrintsTheCompensations(t *testing.T) {
	backends = NewBackends()
	var out bytes.Buffer
	in := Input{Order: order("o6", 2, 1999), FailShipping: true, ChargeFailures: 1, RetryInterval: 10 * time.Millisecond}
	if err := run(durable.Options{}, in, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"result: Compensated", "compensated: refunded PAY-o6 ($39.98)", "compensated: restocked 2 × widget"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// Command saga runs the order processing of the Durable Functions tutorial
// as a saga: ProcessOrder checks (and reserves) inventory, charges the
// customer, then creates the shipment. Every step that succeeded registers
// its compensation; when a later step fails, the orchestrator runs the
// compensations in reverse order (refund the payment, put the stock back)
// and returns a result that says what it undid. The charge is retried with
// exponential backoff on durable timers (orchestration.WithRetry), since a
// payment gateway fails transiently.
//
//	go run ./examples/saga                       # data in ./saga-data; shipping fails
//	go run ./examples/saga -fail-shipping=false  # the order goes through
//	go run ./examples/saga -data DIR -charge-failures 2 -retry 100ms
//
// The backends (warehouse, payment gateway, carrier) are simulated in
// memory; the program prints what each of them did.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// Order is what the customer ordered.
type Order struct {
	ID        string `json:"id"`
	Customer  string `json:"customer"`
	Item      string `json:"item"`
	Quantity  int    `json:"quantity"`
	UnitPrice int    `json:"unitPrice"` // in cents
}

// Input is the input of ProcessOrder: the order, and how the simulated
// backends misbehave.
type Input struct {
	Order          Order         `json:"order"`
	FailShipping   bool          `json:"failShipping"`   // the carrier rejects the shipment
	ChargeFailures int           `json:"chargeFailures"` // charge attempts that fail before one succeeds
	RetryInterval  time.Duration `json:"retryInterval"`  // first wait before retrying the charge (default 1s)
}

// Reservation is the output of CheckInventory and the input of Restock.
type Reservation struct {
	OrderID  string `json:"orderId"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// Charge is the input of ChargeCustomer.
type Charge struct {
	OrderID  string `json:"orderId"`
	Customer string `json:"customer"`
	Amount   int    `json:"amount"`
	// FailAttempts makes the simulated gateway fail the first attempts.
	FailAttempts int `json:"failAttempts"`
}

// Payment is the output of ChargeCustomer and the input of Refund.
type Payment struct {
	ID       string `json:"id"`
	OrderID  string `json:"orderId"`
	Amount   int    `json:"amount"`
	Attempts int    `json:"attempts"` // the attempt that succeeded
}

// ShipmentRequest is the input of CreateShipment.
type ShipmentRequest struct {
	OrderID  string `json:"orderId"`
	Customer string `json:"customer"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
	Fail     bool   `json:"fail"`
}

// Result is the output of ProcessOrder.
type Result struct {
	OrderID     string   `json:"orderId"`
	Status      string   `json:"status"` // Completed, Rejected or Compensated
	PaymentID   string   `json:"paymentId,omitempty"`
	Tracking    string   `json:"tracking,omitempty"`
	Error       string   `json:"error,omitempty"`       // why the saga did not complete
	Compensated []string `json:"compensated,omitempty"` // what was undone, in order
}

// compensation is an activity that undoes a step that succeeded.
type compensation struct {
	activity string
	input    any
	what     string
}

// compensationRetry retries compensations harder: they must not give up on
// a transient failure.
var compensationRetry = orchestration.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: 500 * time.Millisecond, BackoffCoefficient: 2}

// ProcessOrder reserves stock, charges the customer and ships, undoing the
// finished steps if a later one fails.
func ProcessOrder(ctx *orchestration.Context) (any, error) {
	var in Input
	if err := ctx.Input(&in); err != nil {
		return nil, err
	}
	o := in.Order
	res := Result{OrderID: o.ID}
	var undo []compensation
	// fail runs the compensations in reverse order and reports the saga's
	// failure. A compensation that fails even after its retries fails the
	// instance: someone must look at it (and may Rewind it once fixed).
	fail := func(step string, err error) (any, error) {
		res.Status = "Compensated"
		res.Error = step + ": " + failureMessage(err)
		for _, c := range slices.Backward(undo) {
			if err := ctx.CallActivity(c.activity, c.input, orchestration.WithRetry(compensationRetry)).Await(nil); err != nil {
				return nil, fmt.Errorf("compensation %s failed after %v: %w", c.what, res.Compensated, err)
			}
			res.Compensated = append(res.Compensated, c.what)
		}
		return res, nil
	}

	reservation, err := orchestration.Await[Reservation](ctx.CallActivity("CheckInventory", o))
	if err != nil {
		// Nothing to undo: the order is rejected.
		res.Status, res.Error = "Rejected", "check inventory: "+failureMessage(err)
		return res, nil
	}
	undo = append(undo, compensation{"Restock", reservation, fmt.Sprintf("restocked %d × %s", reservation.Quantity, reservation.Item)})

	retryInterval := in.RetryInterval
	if retryInterval <= 0 {
		retryInterval = time.Second
	}
	charge := Charge{OrderID: o.ID, Customer: o.Customer, Amount: o.Quantity * o.UnitPrice, FailAttempts: in.ChargeFailures}
	payment, err := orchestration.Await[Payment](ctx.CallActivity("ChargeCustomer", charge, orchestration.WithRetry(orchestration.RetryPolicy{
		MaxAttempts:        4,
		FirstRetryInterval: retryInterval,
		BackoffCoefficient: 2,
		MaxRetryInterval:   30 * time.Second,
		// A declined card will not get better: retry only other failures.
		Handle: func(err error) bool { return !isDeclined(err) },
	})))
	if err != nil {
		return fail("charge customer", err)
	}
	res.PaymentID = payment.ID
	undo = append(undo, compensation{"Refund", payment, fmt.Sprintf("refunded %s (%s)", payment.ID, cents(payment.Amount))})

	tracking, err := orchestration.Await[string](ctx.CallActivity("CreateShipment", ShipmentRequest{
		OrderID: o.ID, Customer: o.Customer, Item: o.Item, Quantity: o.Quantity, Fail: in.FailShipping,
	}))
	if err != nil {
		return fail("create shipment", err)
	}
	res.Status, res.Tracking = "Completed", tracking
	return res, nil
}

// failureMessage is the message of a failed activity, without the wrapping
// that names the task.
func failureMessage(err error) string {
	var tf *orchestration.TaskFailedError
	if errors.As(err, &tf) && tf.Failure != nil {
		return tf.Failure.Message
	}
	return err.Error()
}

func isDeclined(err error) bool {
	var tf *orchestration.TaskFailedError
	return errors.As(err, &tf) && tf.Failure != nil && tf.Failure.ErrorType == ErrorTypeDeclined
}

// ErrorTypeDeclined is the ErrorType in the failure details of a declined
// charge.
const ErrorTypeDeclined = "CardDeclined"

// DeclinedError is the error of a charge the bank declined. Its ErrorType
// method names the failure type recorded in history (otherwise the Go type
// name, %T, is recorded), which is what the retry policy tests.
type DeclinedError struct{ Reason string }

func (e *DeclinedError) Error() string { return "card declined: " + e.Reason }

// ErrorType is recorded as the failure's ErrorType.
func (e *DeclinedError) ErrorType() string { return ErrorTypeDeclined }

func cents(n int) string { return fmt.Sprintf("$%d.%02d", n/100, n%100) }

// Backends simulates the warehouse, the payment gateway and the carrier. Its
// operations are idempotent per order, as activities run at least once.
type Backends struct {
	mu        sync.Mutex
	Stock     map[string]int    // item → units available
	Reserved  map[string]int    // order → units reserved
	Charged   map[string]int    // order → amount charged, in cents
	Refunded  map[string]int    // order → amount refunded
	Shipments map[string]string // order → tracking number
	Log       []string          // what happened, in order
}

// NewBackends returns backends with some stock.
func NewBackends() *Backends {
	return &Backends{
		Stock:    map[string]int{"widget": 10, "gadget": 3},
		Reserved: map[string]int{}, Charged: map[string]int{}, Refunded: map[string]int{}, Shipments: map[string]string{},
	}
}

// backends are what the activities below talk to.
var backends = NewBackends()

func (b *Backends) logf(format string, args ...any) {
	b.Log = append(b.Log, fmt.Sprintf(format, args...))
}

// CheckInventory reserves the ordered quantity, or fails if it is not in
// stock.
func CheckInventory(_ context.Context, o Order) (Reservation, error) {
	b := backends
	b.mu.Lock()
	defer b.mu.Unlock()
	r := Reservation{OrderID: o.ID, Item: o.Item, Quantity: o.Quantity}
	if _, ok := b.Reserved[o.ID]; ok {
		return r, nil // a re-run of this activity: already reserved
	}
	if o.Quantity < 1 || b.Stock[o.Item] < o.Quantity {
		b.logf("warehouse: cannot reserve %d × %s (%d in stock)", o.Quantity, o.Item, b.Stock[o.Item])
		return Reservation{}, fmt.Errorf("only %d × %s in stock, %d ordered", b.Stock[o.Item], o.Item, o.Quantity)
	}
	b.Stock[o.Item] -= o.Quantity
	b.Reserved[o.ID] = o.Quantity
	b.logf("warehouse: reserved %d × %s for %s (%d left)", o.Quantity, o.Item, o.ID, b.Stock[o.Item])
	return r, nil
}

// ChargeCustomer charges the customer. The simulated gateway times out on
// the first c.FailAttempts attempts.
func ChargeCustomer(ctx context.Context, c Charge) (Payment, error) {
	info, _ := orchestration.ActivityInfoFrom(ctx)
	b := backends
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.Amount <= 0 {
		b.logf("payment gateway: declined the charge of %s", c.Customer)
		return Payment{}, &DeclinedError{Reason: "invalid amount"}
	}
	if info.Attempt <= c.FailAttempts {
		b.logf("payment gateway: attempt %d to charge %s timed out", info.Attempt, c.Customer)
		return Payment{}, fmt.Errorf("payment gateway timeout (attempt %d)", info.Attempt)
	}
	p := Payment{ID: "PAY-" + c.OrderID, OrderID: c.OrderID, Amount: c.Amount, Attempts: info.Attempt}
	if _, ok := b.Charged[c.OrderID]; !ok {
		b.Charged[c.OrderID] = c.Amount
		b.logf("payment gateway: charged %s %s (attempt %d)", c.Customer, cents(c.Amount), info.Attempt)
	}
	return p, nil
}

// CreateShipment books the shipment with the carrier, which rejects it if
// s.Fail.
func CreateShipment(_ context.Context, s ShipmentRequest) (string, error) {
	b := backends
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.Fail {
		b.logf("carrier: rejected the shipment of %s", s.OrderID)
		return "", errors.New("carrier rejected the shipment: address not deliverable")
	}
	tracking := "TRK-" + s.OrderID
	if _, ok := b.Shipments[s.OrderID]; !ok {
		b.Shipments[s.OrderID] = tracking
		b.logf("carrier: shipping %d × %s to %s, tracking %s", s.Quantity, s.Item, s.Customer, tracking)
	}
	return tracking, nil
}

// Refund refunds a payment (once).
func Refund(_ context.Context, p Payment) error {
	b := backends
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.Refunded[p.OrderID]; !ok {
		b.Refunded[p.OrderID] = p.Amount
		b.logf("payment gateway: refunded %s (%s)", p.ID, cents(p.Amount))
	}
	return nil
}

// Restock puts a reservation back in stock (once).
func Restock(_ context.Context, r Reservation) error {
	b := backends
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.Reserved[r.OrderID]; ok {
		delete(b.Reserved, r.OrderID)
		b.Stock[r.Item] += r.Quantity
		b.logf("warehouse: restocked %d × %s (%d in stock)", r.Quantity, r.Item, b.Stock[r.Item])
	}
	return nil
}

// Register registers the orchestrator "ProcessOrder" and its activities.
func Register(rt *durable.Runtime) error {
	if err := rt.RegisterOrchestrator("ProcessOrder", ProcessOrder); err != nil {
		return err
	}
	for _, a := range []struct {
		name string
		fn   any
	}{
		{"CheckInventory", CheckInventory},
		{"ChargeCustomer", ChargeCustomer},
		{"CreateShipment", CreateShipment},
		{"Refund", Refund},
		{"Restock", Restock},
	} {
		if err := rt.RegisterActivity(a.name, a.fn); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	dir := flag.String("data", "saga-data", "directory of the task hub (created if missing)")
	failShipping := flag.Bool("fail-shipping", true, "make the carrier reject the shipment, so the saga compensates")
	chargeFailures := flag.Int("charge-failures", 1, "charge attempts that time out before one succeeds (4 attempts in all)")
	retry := flag.Duration("retry", 200*time.Millisecond, "first wait before retrying the charge (doubles each time)")
	quantity := flag.Int("quantity", 2, "how many widgets to order (10 in stock)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in := Input{
		Order:          Order{ID: "order-" + time.Now().Format("20060102-150405.000"), Customer: "ada@example.com", Item: "widget", Quantity: *quantity, UnitPrice: 1999},
		FailShipping:   *failShipping,
		ChargeFailures: *chargeFailures,
		RetryInterval:  *retry,
	}
	if err := run(durable.Options{Dir: *dir, Logger: logger}, in, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "saga:", err)
		os.Exit(1)
	}
}

// run opens a runtime with opts, processes one order and prints what
// happened to out.
func run(opts durable.Options, in Input, out io.Writer) error {
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := rt.Client()

	o := in.Order
	id, err := client.Start(ctx, "ProcessOrder", in, durable.WithInstanceID(o.ID))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "started instance %s: %d × %s for %s (shipping fails: %v, charge fails %d time(s))\n",
		id, o.Quantity, o.Item, o.Customer, in.FailShipping, in.ChargeFailures)
	st, err := client.WaitForCompletion(ctx, id)
	if err != nil {
		return err
	}
	backends.mu.Lock()
	for _, line := range backends.Log {
		fmt.Fprintln(out, "  "+line)
	}
	backends.mu.Unlock()
	fmt.Fprintln(out, "status:", st.RuntimeStatus)
	if st.Failure != nil {
		return fmt.Errorf("instance %s failed: %s", id, st.Failure.Error())
	}
	var res Result
	if err := st.DecodeOutput(&res); err != nil {
		return err
	}
	fmt.Fprintf(out, "result: %s\n", res.Status)
	if res.Tracking != "" {
		fmt.Fprintf(out, "  tracking %s, payment %s\n", res.Tracking, res.PaymentID)
	}
	if res.Error != "" {
		fmt.Fprintf(out, "  failed at %s\n", res.Error)
	}
	for _, c := range res.Compensated {
		fmt.Fprintf(out, "  compensated: %s\n", c)
	}
	return nil
}

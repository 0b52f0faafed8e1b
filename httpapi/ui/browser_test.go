package ui_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/httpapi"
	"github.com/durable-go/durable/orchestration"
)

const apiKey = "s3cret-key"

// docsEnv, when set to 1, makes the browser test also write the README's
// screenshots into docs/ (go test ./httpapi/ui/ -run Browser with
// DURABLE_DOCS_SCREENSHOTS=1).
const docsEnv = "DURABLE_DOCS_SCREENSHOTS"

// browser finds headless Chromium. Without one the test skips, except
// under CI=true, where a missing browser is a failure.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on PATH (chromium, chromium-browser, google-chrome): .ci/run installs Debian's chromium")
	}
	t.Skip("no Chromium on PATH: apt-get install chromium to run the dashboard's browser test")
	return ""
}

// sampleApp registers a workflow with every kind of timeline row, one that
// waits for an event, and one that fails through a sub-orchestration.
func sampleApp(t *testing.T, rt *durable.Runtime) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rt.RegisterActivity("Hello", func(ctx context.Context, city string) (string, error) {
		return "Hello " + city + "!", nil
	}))
	must(rt.RegisterActivity("Pack", func(ctx context.Context, what string) (string, error) {
		// Long enough for a visible bar on the timeline.
		select {
		case <-time.After(30 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return what + " packed", nil
	}))
	var charges atomic.Int32
	must(rt.RegisterActivity("Charge", func(ctx context.Context, amount int) (int, error) {
		if charges.Add(1) == 1 {
			return 0, fmt.Errorf("card declined for %d", amount) // the first charge only: a rewind succeeds
		}
		return amount, nil
	}))
	must(rt.RegisterEntity("Counter", func(ctx *orchestration.EntityContext) error {
		var n int
		_ = ctx.GetState(&n)
		n++
		if err := ctx.SetState(n); err != nil {
			return err
		}
		return ctx.Return(n)
	}))
	must(rt.RegisterOrchestrator("Cities", func(ctx *orchestration.Context) (any, error) {
		var out []string
		for _, c := range []string{"Tokyo", "Seattle", "London"} {
			s, err := orchestration.Await[string](ctx.CallActivity("Hello", c))
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}))
	must(rt.RegisterOrchestrator("Trip", func(ctx *orchestration.Context) (any, error) {
		if _, err := orchestration.Await[string](ctx.CallActivity("Pack", "bags")); err != nil {
			return nil, err
		}
		if err := ctx.CreateTimer(50 * time.Millisecond).Await(nil); err != nil {
			return nil, err
		}
		cities, err := orchestration.Await[[]string](ctx.CallSubOrchestrator("Cities", nil))
		if err != nil {
			return nil, err
		}
		n, err := orchestration.Await[int](ctx.CallEntity(orchestration.EntityID{Name: "Counter", Key: "trips"}, "add", nil))
		if err != nil {
			return nil, err
		}
		return map[string]any{"cities": cities, "trip": n}, nil
	}))
	must(rt.RegisterOrchestrator("Approval", func(ctx *orchestration.Context) (any, error) {
		_ = ctx.SetCustomStatus("waiting for approval")
		return orchestration.Await[string](ctx.WaitForExternalEvent("Approve"))
	}))
	must(rt.RegisterOrchestrator("Pay", func(ctx *orchestration.Context) (any, error) {
		return orchestration.Await[int](ctx.CallActivity("Charge", 42))
	}))
	must(rt.RegisterOrchestrator("Order", func(ctx *orchestration.Context) (any, error) {
		_, err := orchestration.Await[int](ctx.CallSubOrchestrator("Pay", nil))
		return nil, err
	}))
}

// TestDashboardInBrowser drives the dashboard in headless Chromium: it asks
// for the API key, lists and filters instances, shows an instance's
// timeline, terminates a waiting instance, and shows the node's health.
// Screenshots go to artifacts/TestDashboardInBrowser (gitignored).
func TestDashboardInBrowser(t *testing.T) {
	chrome := browser(t)
	rt, err := durable.Open(durable.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sampleApp(t, rt)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := rt.Client()
	start := func(name, id string) {
		t.Helper()
		if _, err := c.Start(ctx, name, nil, durable.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		start("Cities", fmt.Sprintf("cities-%d", i))
	}
	start("Trip", "trip-1")
	start("Order", "order-1")
	start("Approval", "wait-1")
	start("Approval", "wait-2")
	for _, id := range []string{"cities-1", "cities-2", "cities-3", "trip-1", "order-1"} {
		if _, err := c.WaitForCompletion(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	api := httpapi.New(c, httpapi.Options{APIKey: apiKey, Dashboard: true, Node: rt, Logger: quietLogger()})
	var keyInURL atomic.Value // the first URL that carried the key, if any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.String(), apiKey) {
			keyInURL.CompareAndSwap(nil, r.URL.String())
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(api.StopWaits)

	bctx := newBrowser(t, ctx, chrome)
	shots := artifacts(t)
	docs := os.Getenv(docsEnv) == "1"

	// The list: the page asks for the key, then shows every instance and
	// the counts by status.
	run(t, bctx, "open the list",
		chromedp.Navigate(srv.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#field-key")),
		chromedp.SendKeys(chromedp.CSS("#field-key"), apiKey),
		chromedp.Click(chromedp.CSS("#modal-ok")),
		waitJS(`document.querySelectorAll('#instances tr[data-id]').length === 9`), // 7 started, 2 sub-orchestrations
		waitJS(`(document.querySelector('[data-count=Completed]')||{}).textContent === '5'`),
		waitJS(`(document.querySelector('[data-count=Running]')||{}).textContent === '2'`),
		waitJS(`(document.querySelector('[data-count=Failed]')||{}).textContent === '2'`),
	)
	shot(t, bctx, shots, "list", docs)

	// The list refreshes itself: an instance started now shows up, and
	// the counts follow.
	start("Cities", "cities-4")
	if _, err := c.WaitForCompletion(ctx, "cities-4"); err != nil {
		t.Fatal(err)
	}
	run(t, bctx, "auto-refresh",
		waitJS(`!!document.querySelector('#instances tr[data-id="cities-4"]')`),
		waitJS(`(document.querySelector('[data-count=Completed]')||{}).textContent === '6'`),
	)

	// Filter by id prefix, then by name.
	run(t, bctx, "filter by prefix",
		chromedp.SendKeys(chromedp.CSS("#f-prefix"), "wait-"),
		chromedp.Click(chromedp.CSS("#f-apply")),
		waitJS(`(() => { const ids = [...document.querySelectorAll('#instances tr[data-id]')].map(r => r.dataset.id); return ids.length === 2 && ids.every(id => id.startsWith('wait-')); })()`),
	)
	run(t, bctx, "filter by name",
		chromedp.Navigate(srv.URL+"/ui/#/instances?name=Cities"),
		waitJS(`(() => { const rows = [...document.querySelectorAll('#instances tr[data-id]')]; return rows.length === 5 && rows.every(r => r.children[1].textContent === 'Cities'); })()`),
	)

	// An instance: its timeline has a row per activity, the timer, the
	// sub-orchestration and the entity call; its history table is there.
	var activities, timers, subs, entities, historyRows int
	run(t, bctx, "open an instance",
		chromedp.Navigate(srv.URL+"/ui/#/instances"),
		waitJS(`!!document.querySelector('#instances a[href="#/instance/trip-1"]')`),
		chromedp.Click(chromedp.CSS(`#instances a[href="#/instance/trip-1"]`)),
		chromedp.WaitVisible(chromedp.CSS("#timeline")),
		into(&activities, chromedp.Evaluate[int](`document.querySelectorAll('#timeline .tl-row[data-kind=activity]').length`)),
		into(&timers, chromedp.Evaluate[int](`document.querySelectorAll('#timeline .tl-row[data-kind=timer]').length`)),
		into(&subs, chromedp.Evaluate[int](`document.querySelectorAll('#timeline .tl-row[data-kind=suborchestration]').length`)),
		into(&entities, chromedp.Evaluate[int](`document.querySelectorAll('#timeline .tl-row[data-kind=entity]').length`)),
		into(&historyRows, chromedp.Evaluate[int](`document.querySelectorAll('#history tbody tr').length`)),
	)
	if activities != 1 || timers != 1 || subs != 1 || entities != 1 {
		t.Errorf("timeline rows of trip-1: %d activities, %d timers, %d sub-orchestrations, %d entity calls; want one of each", activities, timers, subs, entities)
	}
	if historyRows < 6 {
		t.Errorf("history table of trip-1 has %d rows, want the whole history", historyRows)
	}
	shot(t, bctx, shots, "instance", docs)

	// The child links back to its parent; the failed order shows the
	// failure chain down to the activity's message.
	var failure string
	run(t, bctx, "follow the child and the failure",
		chromedp.Click(chromedp.CSS(`#timeline a[href^="#/instance/trip-1"]`)),
		waitJS(`!!document.querySelector('#parent a[href="#/instance/trip-1"]')`),
		chromedp.Navigate(srv.URL+"/ui/#/instance/order-1"),
		chromedp.WaitVisible(chromedp.CSS("#failure")),
		into(&failure, chromedp.Text(chromedp.CSS("#failure"))),
	)
	if !strings.Contains(failure, "card declined for 42") || !strings.Contains(failure, "caused by") {
		t.Errorf("failure box of order-1 = %q, want the chain down to the activity's message", failure)
	}

	// Terminate a waiting instance, after a confirmation.
	run(t, bctx, "terminate",
		chromedp.Navigate(srv.URL+"/ui/#/instance/wait-1"),
		chromedp.WaitVisible(chromedp.CSS("#act-terminate")),
		waitJS(`!!document.querySelector('#instance-status [data-status=Running]')`),
		chromedp.Click(chromedp.CSS("#act-terminate")),
		chromedp.WaitVisible(chromedp.CSS("#field-reason")),
		chromedp.SendKeys(chromedp.CSS("#field-reason"), "not needed"),
		chromedp.Click(chromedp.CSS("#modal-ok")),
		waitJS(`!!document.querySelector('#instance-status [data-status=Terminated]')`),
	)
	st, err := c.Status(ctx, "wait-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.RuntimeStatus != durable.StatusTerminated {
		t.Errorf("wait-1 is %s after the dashboard's terminate, want Terminated", st.RuntimeStatus)
	}

	// The node's health.
	var partitions string
	run(t, bctx, "node page",
		chromedp.Navigate(srv.URL+"/ui/#/node"),
		chromedp.WaitVisible(chromedp.CSS(`[data-stat=partitions]`)),
		into(&partitions, chromedp.Text(chromedp.CSS(`[data-stat=partitions] .card-value`))),
		waitJS(`!!document.querySelector('#failures a[href="#/instance/order-1"]')`),
	)
	if want := "4 of 4"; partitions != want {
		t.Errorf("node page shows partitions %q, want %q", partitions, want)
	}
	shot(t, bctx, shots, "node", docs)

	if u := keyInURL.Load(); u != nil {
		t.Errorf("the dashboard sent the API key in a URL: %s", u)
	}
}

// newBrowser starts headless Chromium for the test; it is stopped (and its
// processes reaped) when the test ends.
func newBrowser(t *testing.T, ctx context.Context, chrome string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.WindowSize(1280, 860),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		bcancel()
		acancel()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}
	return bctx
}

// run runs the browser actions of one step; a failure names the step and
// what the page showed.
func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		var page, banner string
		_ = chromedp.Do(ctx, into(&page, chromedp.Evaluate[string](`document.querySelector('#view').innerText.slice(0, 2000)`)),
			into(&banner, chromedp.Evaluate[string](`document.querySelector('#banner').innerText`)))
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("the page did not get there: %w", err)
		}
		t.Fatalf("%s: %v\nbanner: %s\npage:\n%s", step, err, banner, page)
	}
}

// waitJS waits until the expression is true in the page.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	var ok bool
	return into(&ok, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
}

// into runs a and stores its value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		if err == nil {
			*dst = v
		}
		return chromedp.Void{}, err
	}
}

// artifacts is the test's screenshot folder: artifacts/<test name>.
func artifacts(t *testing.T) string {
	dir := filepath.Join("artifacts", t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shot saves a PNG of the viewport as dir/name.png and, with docs, as
// docs/dashboard-name.png at the repository's root.
func shot(t *testing.T, ctx context.Context, dir, name string, docs bool) {
	t.Helper()
	var png []byte
	run(t, ctx, "screenshot "+name, into(&png, chromedp.FullScreenshot(100)))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if docs {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "dashboard-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDashboardActions starts, suspends, resumes, raises to, restarts,
// purges and rewinds instances, and signals and reads an entity, each
// through the dashboard's buttons and their confirmations, and checks the
// outcome through the Client.
func TestDashboardActions(t *testing.T) {
	chrome := browser(t)
	rt, err := durable.Open(durable.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sampleApp(t, rt)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := rt.Client()
	for name, id := range map[string]string{"Approval": "wait-1", "Pay": "pay-1"} {
		if _, err := c.Start(ctx, name, nil, durable.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := c.WaitForCompletion(ctx, "pay-1"); err != nil || st.RuntimeStatus != durable.StatusFailed {
		t.Fatalf("pay-1: %v %v, want Failed", st, err)
	}
	api := httpapi.New(c, httpapi.Options{Dashboard: true, Node: rt, Logger: quietLogger()})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	bctx := newBrowser(t, ctx, chrome)
	status := func(id string) durable.RuntimeStatus {
		t.Helper()
		st, err := c.Status(ctx, id)
		if err != nil {
			t.Fatalf("status of %s: %v", id, err)
		}
		return st.RuntimeStatus
	}
	confirm := func(button string, fields ...string) chromedp.Action[chromedp.Void] {
		steps := []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.CSS(button)), chromedp.Click(chromedp.CSS(button)), chromedp.WaitVisible(chromedp.CSS("#modal-ok"))}
		for i := 0; i+1 < len(fields); i += 2 {
			steps = append(steps, chromedp.SetValue(chromedp.CSS(fields[i]), fields[i+1]))
		}
		return chromedp.Steps(append(steps, chromedp.Click(chromedp.CSS("#modal-ok")), waitJS(`document.querySelector('#modal').hidden`))...)
	}
	shown := func(s durable.RuntimeStatus) chromedp.Action[chromedp.Void] {
		return waitJS(fmt.Sprintf(`!!document.querySelector('#instance-status [data-status=%s]')`, s))
	}

	run(t, bctx, "suspend", chromedp.Navigate(srv.URL+"/ui/#/instance/wait-1"), shown(durable.StatusRunning),
		confirm("#act-suspend", "#field-reason", "hold on"), shown(durable.StatusSuspended))
	if s := status("wait-1"); s != durable.StatusSuspended {
		t.Fatalf("wait-1 is %s after suspend, want Suspended", s)
	}
	run(t, bctx, "resume", confirm("#act-resume"), shown(durable.StatusRunning))
	if s := status("wait-1"); s != durable.StatusRunning {
		t.Fatalf("wait-1 is %s after resume, want Running", s)
	}
	run(t, bctx, "raise", confirm("#act-raise", "#field-event", "Approve", "#field-data", `"yes"`), shown(durable.StatusCompleted))
	if st, err := c.Status(ctx, "wait-1"); err != nil || string(st.Output) != `"yes"` {
		t.Fatalf("wait-1 after the raise: %v %v, want output \"yes\"", st, err)
	}

	var restarted string
	run(t, bctx, "restart with a new id", confirm("#act-restart"),
		// The page of the new instance, drawn (not the old one's, still there
		// while the new one loads).
		waitJS(`(() => { const id = decodeURIComponent(location.hash.replace('#/instance/', '')); const e = document.querySelector('#instance-id');
			return location.hash.startsWith('#/instance/') && id !== 'wait-1' && !!e && e.textContent === id; })()`),
		into(&restarted, chromedp.Text(chromedp.CSS("#instance-id"))))
	if st, err := c.Status(ctx, restarted); err != nil || st.Name != "Approval" || restarted == "wait-1" {
		t.Fatalf("restarted instance %q: %v %v, want a new Approval", restarted, st, err)
	}

	run(t, bctx, "purge", chromedp.Navigate(srv.URL+"/ui/#/instance/wait-1"), shown(durable.StatusCompleted),
		confirm("#act-purge"), waitJS(`location.hash === '#/instances'`))
	if _, err := c.Status(ctx, "wait-1"); !errors.Is(err, durable.ErrInstanceNotFound) {
		t.Fatalf("wait-1 after the purge: %v, want ErrInstanceNotFound", err)
	}

	run(t, bctx, "rewind", chromedp.Navigate(srv.URL+"/ui/#/instance/pay-1"), shown(durable.StatusFailed),
		confirm("#act-rewind"), shown(durable.StatusCompleted))
	if st, err := c.Status(ctx, "pay-1"); err != nil || string(st.Output) != "42" {
		t.Fatalf("pay-1 after the rewind: %v %v, want output 42", st, err)
	}

	run(t, bctx, "start", chromedp.Navigate(srv.URL+"/ui/#/instances"), chromedp.WaitVisible(chromedp.CSS("#instances")),
		confirm("#start", "#field-name", "Cities", "#field-id", "from-ui"),
		waitJS(`location.hash === '#/instance/from-ui'`), shown(durable.StatusCompleted))

	var state string
	run(t, bctx, "signal and read an entity", chromedp.Navigate(srv.URL+"/ui/#/entities"), chromedp.WaitVisible(chromedp.CSS("#entities")),
		confirm("#signal", "#field-name", "Counter", "#field-key", "k1", "#field-op", "add"),
		waitJS(`!!document.querySelector('#entities a[href="#/entity/counter/k1"]')`),
		chromedp.Click(chromedp.CSS(`#entities a[href="#/entity/counter/k1"]`)),
		chromedp.WaitVisible(chromedp.CSS("#entity-state")),
		into(&state, chromedp.Text(chromedp.CSS("#entity-state"))))
	if strings.TrimSpace(state) != "1" {
		t.Fatalf("entity page shows state %q, want 1", state)
	}
}

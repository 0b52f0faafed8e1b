package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/metrics"
	"github.com/durable-go/durable/orchestration"
)

// run opens a runtime observed by m, runs a workflow with an activity
// that fails once and is retried, a timer and an entity call, and one that
// is terminated, and returns the runtime.
func run(t *testing.T, m *metrics.Metrics) *durable.Runtime {
	t.Helper()
	rt, err := durable.Open(durable.Options{Observer: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	m.Watch(rt)
	var calls atomic.Int32
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rt.RegisterActivity("Flaky", func(ctx context.Context, n int) (int, error) {
		if calls.Add(1) == 1 {
			return 0, errors.New("first call fails")
		}
		return n * 2, nil
	}))
	must(rt.RegisterEntity("Counter", func(ctx *orchestration.EntityContext) error {
		var n int
		_ = ctx.GetState(&n)
		return ctx.SetState(n + 1)
	}))
	must(rt.RegisterOrchestrator("Work", func(ctx *orchestration.Context) (any, error) {
		v, err := orchestration.Await[int](ctx.CallActivity("Flaky", 21, orchestration.WithRetry(orchestration.RetryPolicy{MaxAttempts: 3, FirstRetryInterval: time.Millisecond})))
		if err != nil {
			return nil, err
		}
		if err := ctx.CreateTimer(time.Millisecond).Await(nil); err != nil {
			return nil, err
		}
		if err := ctx.CallEntity(orchestration.EntityID{Name: "Counter", Key: "k"}, "add", nil).Await(nil); err != nil {
			return nil, err
		}
		return v, nil
	}))
	must(rt.RegisterOrchestrator("Wait", func(ctx *orchestration.Context) (any, error) {
		return nil, ctx.WaitForExternalEvent("never").Await(nil)
	}))
	must(rt.Start())
	ctx := t.Context()
	c := rt.Client()
	id, err := c.Start(ctx, "Work", nil)
	must(err)
	st, err := c.WaitForCompletion(ctx, id)
	must(err)
	if st.RuntimeStatus != durable.StatusCompleted {
		t.Fatalf("Work ended %s: %+v", st.RuntimeStatus, st.Failure)
	}
	wid, err := c.Start(ctx, "Wait", nil)
	must(err)
	must(c.Terminate(ctx, wid, "test"))
	_, err = c.WaitForCompletion(ctx, wid)
	must(err)
	return rt
}

// scrape reads /metrics and parses it as Prometheus' text format.
func scrape(t *testing.T, h http.Handler) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the scrape is not Prometheus' text format: %v\n%s", err, body)
	}
	return string(body), fams
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no sample of %s with labels %v", name, want)
	return 0
}

func TestMetricsCountWhatTheNodeDid(t *testing.T) {
	m := metrics.New()
	run(t, m)
	_, fams := scrape(t, m.Handler())
	for _, c := range []struct {
		name   string
		labels []string
		want   func(float64) bool
		what   string
	}{
		{"durable_instances_started_total", []string{"orchestrator", "Work"}, eq(1), "1"},
		{"durable_instances_started_total", []string{"orchestrator", "Wait"}, eq(1), "1"},
		{"durable_instances_ended_total", []string{"orchestrator", "Work", "status", "Completed"}, eq(1), "1"},
		{"durable_instances_ended_total", []string{"orchestrator", "Wait", "status", "Terminated"}, eq(1), "1"},
		{"durable_activity_executions_total", []string{"activity", "Flaky", "outcome", "failed"}, eq(1), "1"},
		{"durable_activity_executions_total", []string{"activity", "Flaky", "outcome", "completed"}, eq(1), "1"},
		{"durable_activity_retries_total", []string{"activity", "Flaky"}, eq(1), "1"},
		{"durable_activity_duration_seconds", []string{"activity", "Flaky"}, eq(2), "2 observations"},
		{"durable_timer_lag_seconds", nil, atLeast(2), "2 or more (the retry's wait and the timer)"},
		{"durable_turn_commit_seconds", nil, atLeast(5), "the turns"},
		{"durable_store_commit_seconds", nil, atLeast(1), "some"},
		{"durable_store_commits_per_transaction", nil, atLeast(1), "some"},
		{"durable_passivations_total", []string{"kind", "instance"}, atLeast(1), "the finished instances"},
		{"durable_actors_in_memory", []string{"kind", "entity"}, eq(1), "the entity, still in memory"},
		{"durable_partitions_hosted", nil, eq(4), "4"},
		{"durable_activity_slots", nil, atLeast(1), "the slots"},
		{"durable_activities_running", nil, eq(0), "0"},
		{"durable_store_transactions_total", nil, atLeast(1), "some"},
		{"durable_node_ready", nil, eq(1), "1"},
		{"go_goroutines", nil, atLeast(1), "the Go runtime's"},
	} {
		if got := value(t, fams, c.name, c.labels...); !c.want(got) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, got, c.what)
		}
	}
}

func eq(want float64) func(float64) bool      { return func(v float64) bool { return v == want } }
func atLeast(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }

// What `promtool check metrics` checks (it runs this linter): names,
// units, suffixes, help texts.
func TestMetricsPassPromtoolsLint(t *testing.T) {
	m := metrics.New()
	run(t, m)
	body, _ := scrape(t, m.Handler())
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

func monitor(t *testing.T, in MonitorInput) (*durable.Status, MonitorResult) {
	t.Helper()
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
	id, err := rt.Client().Start(ctx, "Monitor", in)
	if err != nil {
		t.Fatal(err)
	}
	st, err := rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var res MonitorResult
	if err := st.DecodeOutput(&res); err != nil {
		t.Fatalf("%s %v %+v", st.RuntimeStatus, err, st.Failure)
	}
	// ContinueAsNew keeps one round in history: started, check, completed.
	events, err := rt.Client().History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) > 10 {
		t.Errorf("history of the last round holds %d events", len(events))
	}
	return st, res
}

func TestMonitorPollsUntilTheJobIsDone(t *testing.T) {
	in := MonitorInput{
		// A second of work checked every 50 ms: at least two rounds however
		// slowly a loaded machine runs the first.
		Job:      Job{ID: "fast", StartedAt: time.Now(), Duration: time.Second},
		Interval: 50 * time.Millisecond,
		Timeout:  10 * time.Second,
	}
	st, res := monitor(t, in)
	if !res.Done || res.Progress != 100 || res.Rounds < 2 || res.Message != "alert sent: job fast is done" {
		t.Fatalf("%+v", res)
	}
	if got := string(st.CustomStatus); !strings.Contains(got, `"state":"done"`) {
		t.Fatalf("custom status %s", got)
	}
}

func TestMonitorGivesUpAtTheDeadline(t *testing.T) {
	in := MonitorInput{
		Job:      Job{ID: "slow", StartedAt: time.Now(), Duration: time.Hour},
		Interval: 50 * time.Millisecond,
		Timeout:  time.Second,
	}
	st, res := monitor(t, in)
	// Rounds are at least the first and one more, at most one per interval
	// of the timeout and the first.
	if res.Done || res.Rounds < 2 || res.Rounds > 21 || !strings.HasPrefix(res.Message, "deadline passed") {
		t.Fatalf("%+v", res)
	}
	if got := string(st.CustomStatus); !strings.Contains(got, `"state":"gave up"`) {
		t.Fatalf("custom status %s", got)
	}
}

func TestRunPrintsProgress(t *testing.T) {
	var out bytes.Buffer
	in := MonitorInput{
		// Long enough that the first check, however late a loaded
		// machine runs it, finds the job unfinished.
		Job:      Job{ID: "job", StartedAt: time.Now(), Duration: time.Second},
		Interval: 50 * time.Millisecond,
		Timeout:  10 * time.Second,
	}
	if err := run(durable.Options{}, in, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"waiting", "100% done", "status: Completed", "result: job job done=true"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

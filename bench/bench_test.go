package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestMain lets W4 and the chaos driver re-execute the test binary as
// their child processes.
func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "W4":
		os.Exit(childMain())
	case "chaos":
		os.Exit(chaosChildMain())
	case chaosMemberEnv:
		os.Exit(chaosMemberMain())
	}
	os.Exit(m.Run())
}

// The workloads at tiny sizes, through the same code as the command, so
// that a broken harness fails CI. These are checks, not measurements.
func TestWorkloadsRunAndVerifyAtTinySizes(t *testing.T) {
	for _, tc := range []struct {
		id string
		n  int
	}{{"W1", 30}, {"W2", 2}, {"W3", 30}, {"W4", 30}, {"W5", 200}, {"W6", 2000}} {
		t.Run(tc.id, func(t *testing.T) {
			w := workloadByID(tc.id)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := Config{N: tc.n, FanOut: 10, Entities: 50, W5Idle: 100 * time.Millisecond, Dir: t.TempDir(), NoSync: true, Logger: warnLogger()}
			if tc.id == "W5" || tc.id == "W6" {
				cfg.Concurrency = 32
			}
			r := w.Run(ctx, w, cfg)
			if !r.Verified || r.Error != "" || r.PerSecond <= 0 || r.N != tc.n {
				t.Fatalf("%+v", r)
			}
			// W4's restarted process may find every instance done before
			// the kill, and then commits nothing.
			if tc.id != "W4" && r.CommitsPerTransaction < 1 {
				t.Fatalf("commits per transaction %v: %+v", r.CommitsPerTransaction, r)
			}
			if tc.id == "W4" && (r.DuplicateActivityExecutions == nil || r.CompletedBeforeKill == nil) {
				t.Fatalf("W4 figures missing: %+v", r)
			}
			if tc.id == "W5" && (r.WaitingBytesPerInstance == nil || r.MemoryPassivated == nil || r.StartedPerSecond <= 0 || r.IdleTimeoutMs != 100) {
				t.Fatalf("W5 figures missing: %+v", r)
			}
			if tc.id == "W6" && (r.Entities != 50 || r.LateCounts == nil) {
				t.Fatalf("W6 figures missing: %+v", r)
			}
		})
	}
}

func TestW1AtASteadyRateStartsEveryInstanceOnSchedule(t *testing.T) {
	w := workloadByID("W1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := w.Run(ctx, w, Config{N: 40, Rate: 200, Dir: t.TempDir(), NoSync: true, Logger: warnLogger()})
	if !r.Verified || r.Error != "" || r.Rate != 200 || r.Activities != 120 {
		t.Fatalf("%+v", r)
	}
	// 40 starts 5 ms apart take at least 195 ms: the loop is paced.
	if r.WallMs < 195 {
		t.Fatalf("wall %.1f ms: the starts were not paced at 200/s", r.WallMs)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-w", "w1,W3", "-n", "5", "-mode", "nosync"})
	if err != nil || len(o.Workloads) != 2 || o.N != 5 || o.Mode != "nosync" || o.All {
		t.Fatalf("%+v %v", o, err)
	}
	if o, err := parseFlags([]string{"-w", "all"}); err != nil || len(o.Workloads) != len(workloads) || !o.All {
		t.Fatalf("all: %+v %v", o, err)
	}
	for _, bad := range [][]string{{"-w", "W9"}, {"-mode", "fast"}, {"-n", "-1"}, {"-rate", "-5"}, {"extra"}, {"-cpuprofile", "a", "-cpuprofile-timed", "b"}, {"-cluster", "-1"}, {"-w", "W3", "-cluster", "3"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if o, err := parseFlags([]string{"-w", "W5,w6", "-entities", "10", "-idle", "250ms", "-c", "8"}); err != nil ||
		len(o.Workloads) != 2 || o.Entities != 10 || o.Idle != 250*time.Millisecond || o.Concurrency != 8 {
		t.Fatalf("W5/W6 flags: %+v %v", o, err)
	}
	if o, err := parseFlags([]string{"-w", "W1", "-cluster", "3"}); err != nil || o.Cluster != 3 {
		t.Fatalf("-cluster: %+v %v", o, err)
	}
	if o, err := parseFlags([]string{"-w", "W1", "-peer"}); err != nil || !slices.Equal(o.Peers, []string{peerGoWorkflows, peerDBOS}) ||
		filepath.Base(o.PeerDBOSDir) != "peerdbos" || filepath.Base(o.PeerDir) != "peer" {
		t.Fatalf("-peer: %+v %v", o, err)
	}
	if o, err := parseFlags([]string{"-w", "W1", "-peer", "-peers", "dbos", "-peer-pg", "postgres://127.0.0.1:1/x"}); err != nil ||
		!slices.Equal(o.Peers, []string{peerDBOS}) || o.PeerPG == "" {
		t.Fatalf("-peers dbos -peer-pg: %+v %v", o, err)
	}
	for _, bad := range [][]string{{"-peer", "-peers", "temporal"}, {"-peer-pg", "postgres://127.0.0.1:1/x"}, {"-peer", "-peers", "go-workflows", "-peer-pg", "postgres://127.0.0.1:1/x"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// A workload without Run is an error when named.
	workloads = append(workloads, &Workload{ID: "W9", Name: "future", NotYet: "testing"})
	defer func() { workloads = workloads[:len(workloads)-1] }()
	if _, err := run(Options{Workloads: []string{"W9"}}); !errors.Is(err, errNotImplemented) {
		t.Fatalf("W9: %v", err)
	}
}

// -cpuprofile-timed writes one profile per timed phase: here W3's steps.
func TestTimedProfileCoversEachTimedPhase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "timed.prof")
	timedProfile.path = path
	defer func() { timedProfile = profileOfSpans{} }()
	w := workloadByID("W3")
	cfg := Config{N: 20, Dir: t.TempDir(), NoSync: true, Logger: warnLogger()}
	for i := 0; i < 2; i++ {
		if r := w.Run(context.Background(), w, cfg); !r.Verified || r.Error != "" {
			t.Fatalf("%+v", r)
		}
	}
	for _, p := range []string{path, path + ".2"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// A pprof profile is gzip-compressed protobuf.
		if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Fatalf("%s: %d bytes, not a pprof profile", p, len(b))
		}
	}
	if timedProfile.running != nil {
		t.Fatal("a profile is still running after the phases ended")
	}
}

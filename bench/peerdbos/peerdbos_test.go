package main

import (
	"testing"
	"time"
)

func TestEveryWorkloadIsVerifiedOnSQLiteAtATinySize(t *testing.T) {
	for _, tc := range []struct {
		workload string
		n, fan   int
		want     float64 // activities the row must count
	}{
		{"W1", 20, 0, 60},
		{"W2", 2, 10, 20},
		{"W3", 20, 0, 20},
	} {
		t.Run(tc.workload, func(t *testing.T) {
			cfg := config{n: tc.n, fanOut: tc.fan, mode: "sync", dir: t.TempDir(), timeout: 2 * time.Minute}
			r := runWorkload(tc.workload, "sqlite", cfg)
			if !r.Verified || r.Wrong != 0 || r.Error != "" {
				t.Fatalf("%s: verified=%v wrong=%d error=%q", tc.workload, r.Verified, r.Wrong, r.Error)
			}
			if r.PerSecond <= 0 || float64(r.Activities) != tc.want {
				t.Fatalf("%s: per_second=%v activities=%d, want > 0 and %v", tc.workload, r.PerSecond, r.Activities, tc.want)
			}
			if r.Durability != "power cut (SQLite WAL, synchronous=FULL)" {
				t.Fatalf("%s: durability %q", tc.workload, r.Durability)
			}
		})
	}
}

func TestPostgresBackendNeedsAURL(t *testing.T) {
	if _, err := parseBackends("sqlite,postgres", ""); err == nil {
		t.Fatal("postgres without -pg accepted")
	}
	kinds, err := parseBackends("", "postgres://127.0.0.1:1/x")
	if err != nil || len(kinds) != 2 || kinds[1] != "postgres" {
		t.Fatalf("default backends with -pg: %v, %v", kinds, err)
	}
}

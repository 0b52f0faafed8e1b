//go:build !race

// The members of the cluster mode are this test binary re-executed, and
// protoactor's cluster and remote code trip the race detector (upstream
// races), so the cluster run is left out of -race builds, as
// cluster_test.go's is.

package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestChaosClusterSurvivesKillsOfOneNodeOfThree is the cluster mode's short
// run: three member processes on one hub, one of them (a seeded choice)
// killed with SIGKILL three times and restarted after a seeded delay while
// the others serve, then every instance, entity and the money verified.
// The long run is `go run ./bench -w chaos -cluster 3 -kills 10`.
func TestChaosClusterSurvivesKillsOfOneNodeOfThree(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("kills child processes (-short; CI runs it)")
	}
	var out strings.Builder
	cfg := ChaosConfig{Kills: 3, Seed: 16, Units: 30, Nodes: 3,
		MinGap: 4 * time.Second, MaxGap: 5 * time.Second, MinDown: 200 * time.Millisecond, MaxDown: 4 * time.Second,
		Dir: t.TempDir(), Timeout: 2 * time.Minute, Out: &out}
	r, err := RunChaos(cfg)
	if err != nil {
		t.Fatalf("seed %d: %v\n%s", cfg.Seed, err, out.String())
	}
	PrintChaos(&out, cfg, r)
	t.Log(out.String())
	if r.Kills != cfg.Kills || r.Nodes != 3 || r.Instances != len(chaosPlan(cfg.Seed, cfg.Units)) || r.Money != chaosAccounts*chaosFunding {
		t.Fatalf("%+v", r)
	}
}

// Fewer than three members cannot lose one and keep a majority.
func TestChaosClusterNeedsThreeMembers(t *testing.T) {
	if _, err := RunChaos(ChaosConfig{Kills: 1, Nodes: 2, Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "at least 3") {
		t.Fatalf("err = %v", err)
	}
	if code := chaosMain([]string{"-w", "chaos", "-cluster", "2"}); code != 2 {
		t.Fatalf("bench -w chaos -cluster 2: exit code %d, want 2 (bad arguments)", code)
	}
}

package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestChaosSurvivesAFewKills is the chaos driver's short run, as CI runs
// it: a handful of SIGKILLs of a real child process at seeded moments,
// then every instance, entity and the money are verified. The full run is
// `go run ./bench -w chaos -kills 50`.
func TestChaosSurvivesAFewKills(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("kills child processes (-short; CI runs it)")
	}
	var out strings.Builder
	cfg := ChaosConfig{Kills: 4, Seed: 16, Units: 40, MinKill: 50 * time.Millisecond, MaxKill: 900 * time.Millisecond,
		Dir: t.TempDir(), Timeout: 5 * time.Minute, Out: &out}
	r, err := RunChaos(cfg)
	if err != nil {
		t.Fatalf("seed %d: %v\n%s", cfg.Seed, err, out.String())
	}
	PrintChaos(&out, cfg, r)
	t.Log(out.String())
	if r.Kills == 0 || r.Instances != len(chaosPlan(cfg.Seed, cfg.Units)) || r.Money != chaosAccounts*chaosFunding {
		t.Fatalf("%+v", r)
	}
}

// TestChaosPlanIsReproducibleFromTheSeed: the same seed gives the same
// plan, another seed other transfers.
func TestChaosPlanIsReproducibleFromTheSeed(t *testing.T) {
	a, b, c := chaosPlan(1, 30), chaosPlan(1, 30), chaosPlan(2, 30)
	same := func(x, y []chaosInstance) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i].id != y[i].id || x[i].input != y[i].input {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("one seed, two plans")
	}
	if same(a, c) {
		t.Fatal("two seeds, one plan")
	}
}

func TestChaosArgsSelectTheDriver(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"-w", "chaos", "-kills", "3"}, true},
		{[]string{"-w=chaos"}, true},
		{[]string{"-w", "W1,W3"}, false},
		{[]string{"-n", "3"}, false},
	} {
		if got := chaosArgs(tc.args); got != tc.want {
			t.Errorf("chaosArgs(%q) = %v", tc.args, got)
		}
	}
}

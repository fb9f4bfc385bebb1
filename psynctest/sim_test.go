package psynctest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunSimTopologies(t *testing.T) {
	cases := []SimConfig{
		{Seed: 1, Replicas: 1, Steps: 30},
		{Seed: 2, Replicas: 3, Chain: true, Links: SimLinksSingle, Promotions: true, Restarts: true, Steps: 40},
		{Seed: 3, Replicas: 2, Chain: true, Links: SimLinksDual, Promotions: true, Diskless: true, Steps: 40},
		{Seed: 4, Replicas: 2, Links: SimLinksRandom, Restarts: true, PingPeriod: 20 * time.Millisecond, Steps: 40},
		{Seed: 5, Replicas: 2, BacklogSize: 40, Steps: 40}, // a backlog smaller than most commands
	}
	for _, cfg := range cases {
		t.Run(fmt.Sprintf("seed=%d", cfg.Seed), func(t *testing.T) {
			t.Parallel()
			res := RunSim(t, cfg)
			if res.Writes == 0 || res.Dials < cfg.Replicas {
				t.Errorf("the run did little: %v", res)
			}
			if res.FullSyncs == 0 {
				t.Errorf("no full resync seen, yet every replica starts empty: %v", res)
			}
			t.Log(res)
		})
	}
}

// failRecorder is a testing.TB that records failures instead of failing.
type failRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
	logs []string
}

func (f *failRecorder) Helper() {}
func (f *failRecorder) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *failRecorder) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *failRecorder) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprint(args...))
}

// The checks can fail: a replica whose dataset diverged, and replicas that
// ask PSYNC with the wrong replid (so the master, rightly, sends a full
// resync where the backlog covered them) are reported, with how to rerun.
func TestRunSimDetects(t *testing.T) {
	cases := []struct {
		name string
		sab  sabotage
		want string
	}{
		{"diverged dataset", sabotageStrayWrite, "dataset digest"},
		{"full resync though covered", sabotageForgetReplID, "full resync though the backlog covered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &failRecorder{TB: t}
			// A large backlog and cuts: reconnections the backlog covers.
			res := RunSim(rec, SimConfig{Seed: 7, Replicas: 2, Steps: 60, BacklogSize: 1 << 20, Rerun: "PSYNC_SIM_SEED=7", sabotage: tc.sab})
			errs := strings.Join(rec.errs, "\n")
			if !strings.Contains(errs, tc.want) {
				t.Errorf("sabotage %q not reported; errors:\n%s\nresult %v", tc.name, errs, res)
			}
			if logs := strings.Join(rec.logs, "\n"); !strings.Contains(logs, "rerun this seed alone: PSYNC_SIM_SEED=7") || !strings.Contains(logs, "schedule:") {
				t.Errorf("a failure must say how to rerun the seed and show the schedule; logged:\n%s", logs)
			}
			if tc.sab == sabotageForgetReplID && res.CoveredFull == 0 {
				t.Errorf("CoveredFull not counted: %v", res)
			}
		})
	}
}

func TestDefaultSimConfigVaries(t *testing.T) {
	seen := map[string]bool{}
	for seed := uint64(1); seed <= 200; seed++ {
		c := DefaultSimConfig(seed)
		if c != DefaultSimConfig(seed) {
			t.Fatalf("seed %d: DefaultSimConfig is not a function of the seed", seed)
		}
		seen[fmt.Sprintf("replicas=%d", c.Replicas)] = true
		seen[fmt.Sprintf("chain=%v", c.Chain)] = true
		seen[fmt.Sprintf("links=%d", c.Links)] = true
		seen[fmt.Sprintf("promotions=%v", c.Promotions)] = true
		seen[fmt.Sprintf("restarts=%v", c.Restarts)] = true
		seen[fmt.Sprintf("diskless=%v", c.Diskless)] = true
		seen[fmt.Sprintf("pings=%v", c.PingPeriod > 0)] = true
	}
	for _, want := range []string{"replicas=1", "replicas=3", "chain=true", "chain=false", "links=0", "links=1", "links=2",
		"promotions=true", "promotions=false", "restarts=true", "restarts=false", "diskless=true", "diskless=false", "pings=true", "pings=false"} {
		if !seen[want] {
			t.Errorf("200 seeds never drew %s", want)
		}
	}
}

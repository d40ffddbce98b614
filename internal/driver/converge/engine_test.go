package converge

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// scenario is one testdata/*.json file: a migration's config, the dirty
// rate measured before it, the plan the engine must make, then the pass
// statistics it sees (as QEMU's query-migrate reports them) and the
// actions it must take on them. Units are MB (10^6 bytes) and MB/s,
// except RAM in MiB, as the operator sets it.
type scenario struct {
	Doc    string `json:"doc"`
	Config struct {
		Policy          api.Policy `json:"policy"`
		BandwidthMB     int        `json:"bandwidth_mb"`
		RAMMiB          int64      `json:"ram_mib"`
		PostCopy        bool       `json:"post_copy"`
		MaxDowntimeMS   int        `json:"max_downtime_ms"`
		TimeoutPerGiBS  int        `json:"timeout_per_gib_s"`
		TimeoutAction   string     `json:"timeout_action"`
		EstimateDirtyMB int        `json:"estimate_dirty_mb"` // -1: nothing measured
	} `json:"config"`
	Plan struct {
		Strategy        api.Technique `json:"strategy"`
		MaxDowntimeMS   int           `json:"max_downtime_ms"`
		AutoConverge    bool          `json:"auto_converge"`
		ThrottleInitial int           `json:"throttle_initial"`
		Decision        string        `json:"decision"` // in the first decision's action
	} `json:"plan"`
	Samples []struct {
		AtMS         int     `json:"at_ms"`
		Pass         int     `json:"pass"`
		RemainingMB  float64 `json:"remaining_mb"`
		DirtyMB      float64 `json:"dirty_mb"`
		ThroughputMB float64 `json:"throughput_mb"`
		// TransferredMB is what the move has sent so far (0: not given).
		TransferredMB float64 `json:"transferred_mb,omitempty"`
		Throttle      int     `json:"throttle"`
		// Want is the action expected on this sample ("" for none), and
		// WantThrottle its throttle.
		Want         string `json:"want"`
		WantThrottle int    `json:"want_throttle"`
		WantReason   string `json:"want_reason"` // a phrase of the reason
	} `json:"samples"`
	Strategy api.Technique `json:"strategy"` // Report().Strategy at the end
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var sc scenario
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&sc); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			runScenario(t, sc)
		})
	}
}

func runScenario(t *testing.T, sc scenario) {
	c := sc.Config
	cfg := Config{Policy: c.Policy, BandwidthBytesPerS: float64(c.BandwidthMB) * api.MB, RAM: c.RAMMiB * mib, PostCopy: c.PostCopy,
		MaxDowntime: time.Duration(c.MaxDowntimeMS) * time.Millisecond, TimeoutPerGiB: time.Duration(c.TimeoutPerGiBS) * time.Second,
		TimeoutAction: c.TimeoutAction}
	var est Estimate
	if c.EstimateDirtyMB >= 0 {
		est = Estimate{DirtyRate: float64(c.EstimateDirtyMB) * 1e6, Source: "page-sampling"}
	}
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := start
	e := New(cfg, est, func() time.Time { return clock })

	set, rep := e.Setup(), e.Report()
	if rep.Strategy != sc.Plan.Strategy {
		t.Errorf("planned %q; want %q (decisions %+v)", rep.Strategy, sc.Plan.Strategy, rep.Decisions)
	}
	if got := int(set.MaxDowntime.Milliseconds()); got != sc.Plan.MaxDowntimeMS {
		t.Errorf("downtime limit %d ms; want %d", got, sc.Plan.MaxDowntimeMS)
	}
	if set.AutoConverge != sc.Plan.AutoConverge || set.PostCopy != c.PostCopy {
		t.Errorf("capabilities auto-converge=%v post-copy=%v; want %v %v", set.AutoConverge, set.PostCopy, sc.Plan.AutoConverge, c.PostCopy)
	}
	if sc.Plan.ThrottleInitial != 0 && set.ThrottleInitial != sc.Plan.ThrottleInitial {
		t.Errorf("initial throttle %d; want %d", set.ThrottleInitial, sc.Plan.ThrottleInitial)
	}
	if sc.Plan.Decision != "" && (len(rep.Decisions) == 0 || rep.Decisions[0].Action != sc.Plan.Decision) {
		t.Errorf("first decision %+v; want %q", rep.Decisions, sc.Plan.Decision)
	}
	for i, s := range sc.Samples {
		clock = start.Add(time.Duration(s.AtMS) * time.Millisecond)
		acts := e.Observe(Sample{Elapsed: time.Duration(s.AtMS) * time.Millisecond, Pass: s.Pass,
			Remaining: int64(s.RemainingMB * 1e6), Transferred: int64(s.TransferredMB * 1e6), DirtyRate: s.DirtyMB * 1e6, Throughput: s.ThroughputMB * 1e6, Throttle: s.Throttle})
		switch {
		case s.Want == "" && len(acts) > 0:
			t.Errorf("sample %d (pass %d, %v MB left): unexpected %+v", i, s.Pass, s.RemainingMB, acts)
		case s.Want != "" && (len(acts) != 1 || acts[0].Kind != s.Want):
			t.Errorf("sample %d (pass %d, %v MB left): got %+v; want %q", i, s.Pass, s.RemainingMB, acts, s.Want)
		case s.Want != "":
			if s.WantThrottle != 0 && acts[0].Throttle != s.WantThrottle {
				t.Errorf("sample %d: throttle %d; want %d", i, acts[0].Throttle, s.WantThrottle)
			}
			if !strings.Contains(acts[0].Reason, s.WantReason) {
				t.Errorf("sample %d: reason %q lacks %q", i, acts[0].Reason, s.WantReason)
			}
			t.Logf("sample %d: %s: %s", i, acts[0].Kind, acts[0].Reason)
		}
	}
	rep = e.Report()
	if rep.Strategy != sc.Strategy {
		t.Errorf("ended with strategy %q; want %q", rep.Strategy, sc.Strategy)
	}
	// Every action is on the record, after the plan, in order.
	for i := 1; i < len(rep.Decisions); i++ {
		if rep.Decisions[i].At.Before(rep.Decisions[i-1].At) {
			t.Errorf("decisions out of order: %+v", rep.Decisions)
		}
	}
}

// An engine that switched to post-copy or timed out decides nothing more.
func TestEngineQuietAfterSwitch(t *testing.T) {
	e := New(Config{Policy: api.PolicyPostCopy, BandwidthBytesPerS: 125e6, RAM: gib, PostCopy: true}, Estimate{}, nil)
	if a := e.Observe(Sample{Pass: 2, Remaining: 100e6}); len(a) != 1 || a[0].Kind != ActStartPostCopy {
		t.Fatalf("pass 2 of the post-copy policy: %+v", a)
	}
	for pass := 3; pass < 6; pass++ {
		if a := e.Observe(Sample{Pass: pass, Elapsed: time.Hour, Remaining: 100e6}); len(a) != 0 {
			t.Fatalf("after the switch: %+v", a)
		}
	}
}

// The peer policies keep QEMU's downtime limit and have no completion
// timeout unless one is set; the auto policy always has one.
func TestTimeouts(t *testing.T) {
	long := Sample{Pass: 50, Elapsed: 24 * time.Hour, Remaining: 500e6, DirtyRate: 1e6, Throughput: 125e6}
	if a := New(Config{Policy: api.PolicyPreCopy, BandwidthBytesPerS: 125e6, RAM: gib}, Estimate{}, nil).Observe(long); len(a) != 0 {
		t.Errorf("pre-copy without a timeout acted: %+v", a)
	}
	e := New(Config{Policy: api.PolicyAuto, BandwidthBytesPerS: 125e6, RAM: 4 * gib}, Estimate{}, nil)
	if a := e.Observe(Sample{Pass: 1, Elapsed: 239 * time.Second}); len(a) != 0 {
		t.Errorf("before 4 GiB × 60 s: %+v", a)
	}
	if a := e.Observe(Sample{Pass: 1, Elapsed: 240 * time.Second}); len(a) != 1 || a[0].Kind != ActPause {
		t.Errorf("at 4 GiB × 60 s without post-copy: %+v; want pause", a)
	}
}

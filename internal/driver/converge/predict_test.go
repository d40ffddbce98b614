package converge

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

const (
	gib = 1 << 30
	mib = 1 << 20
)

// The simulation agrees with the closed form where the closed form holds
// (no working-set cap): n ≥ ln(B·downtime/M)/ln(D/B) passes before the
// switch-over, and a total of about M/(B−D).
func TestPredictPreCopyClosedForm(t *testing.T) {
	const B, M = 125e6, gib
	for _, D := range []float64{10e6, 50e6, 100e6} {
		p := PredictPreCopy(M, 0, D, B, 50*time.Millisecond)
		if !p.Converges {
			t.Fatalf("D=%.0f: does not converge: %+v", D, p)
		}
		n := math.Ceil(math.Log(B*0.05/M) / math.Log(D/B))
		if float64(p.Passes) != n {
			t.Errorf("D=%.0f: %d passes; closed form %.0f", D, p.Passes, n)
		}
		total := M / (B - D)
		if got := p.Total.Seconds(); math.Abs(got-total)/total > 0.05 {
			t.Errorf("D=%.0f: total %.2fs; closed form %.2fs", D, got, total)
		}
		if want := p.Total.Seconds() / (M / B); math.Abs(p.Factor-want) > 1e-9 {
			t.Errorf("D=%.0f: factor %.3f; want %.3f", D, p.Factor, want)
		}
	}
}

func TestPredictPreCopy(t *testing.T) {
	for _, tt := range []struct {
		name      string
		mem, ws   int64
		D, B      float64
		downtime  time.Duration
		converges bool
		passes    int
	}{
		{"idle guest: one pass", gib, 0, 0, 125e6, 50 * time.Millisecond, true, 1},
		{"dirtying at the bandwidth never converges", gib, 0, 125e6, 125e6, 300 * time.Millisecond, false, maxPasses},
		{"faster than the bandwidth never converges", gib, 0, 200e6, 125e6, 300 * time.Millisecond, false, maxPasses},
		// A hot set smaller than what fits in the downtime converges
		// whatever the rate: after the first pass, only the set is left.
		{"a small hot set converges at any rate", gib, 4 * mib, 500e6, 125e6, 50 * time.Millisecond, true, 1},
		// 256 MiB hot at 200 MB/s over 125 MB/s: every pass resends the
		// whole set, which never fits in 300 ms.
		{"a big hot set out-dirtying the link does not", gib, 256 * mib, 200e6, 125e6, 300 * time.Millisecond, false, maxPasses},
		{"no bandwidth predicts nothing", gib, 0, 0, 0, time.Second, false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := PredictPreCopy(tt.mem, tt.ws, tt.D, tt.B, tt.downtime)
			if p.Converges != tt.converges || p.Passes != tt.passes {
				t.Errorf("got converges=%v passes=%d; want %v %d (%+v)", p.Converges, p.Passes, tt.converges, tt.passes, p)
			}
		})
	}
}

func TestThrottleFor(t *testing.T) {
	for _, tt := range []struct {
		rate, bw float64
		want     int
	}{
		{300e6, 125e6, 94},  // 300 → 18.75 MB/s needs 93.75 %
		{200e6, 125e6, 91},  // 200 → 18.75: 90.6 %
		{20e6, 125e6, 20},   // already below the share: the floor
		{50e6, 1e6, 99},     // a slow link: the ceiling
		{0, 125e6, 20},      // nothing measured: the floor
		{100e6, 0, 20},      // no bandwidth: the floor
		{125e6, 125e6, 85},  // at the bandwidth: 85 %
		{1000e6, 125e6, 99}, // 98.2 % rounds up, clamped to 99
	} {
		if got := throttleFor(tt.rate, tt.bw, throttleShare); got != tt.want {
			t.Errorf("throttleFor(%.0f, %.0f) = %d; want %d", tt.rate, tt.bw, got, tt.want)
		}
	}
}

// The engine predicts from the resident memory when the driver measured
// it: a mostly empty guest is predicted at what a first pass sends.
func TestPlanFromResidentMemory(t *testing.T) {
	cfg := Config{Policy: api.PolicyAuto, BandwidthBytesPerS: 125e6, RAM: 512 << 20}
	all := New(cfg, Estimate{DirtyRate: 20e6, Source: "page-sampling"}, nil).Report()
	res := New(cfg, Estimate{DirtyRate: 20e6, Source: "page-sampling", Resident: 200e6}, nil).Report()
	if !strings.Contains(res.Prediction, "200 MB resident of 512 MiB") || !strings.Contains(all.Prediction, ", 512 MiB of RAM:") {
		t.Errorf("predictions %q and %q do not say what they count", all.Prediction, res.Prediction)
	}
	// 200 MB at 125 MB/s is 1.6 s; the 20 MB/s dirtied meanwhile goes in a
	// second pass: about 1.9 s, against 5 s for all 537 MB.
	if res.Predicted < 1500*time.Millisecond || res.Predicted > 2200*time.Millisecond || all.Predicted < 4*time.Second {
		t.Errorf("predicted %s from resident memory and %s from all RAM", res.Predicted, all.Predicted)
	}
	// A resident figure above the RAM (huge pages rounding up) is ignored.
	if big := New(cfg, Estimate{DirtyRate: 20e6, Source: "page-sampling", Resident: 600 << 20}, nil).Report(); big.Predicted != all.Predicted {
		t.Errorf("resident above RAM predicted %s; want %s", big.Predicted, all.Predicted)
	}
}

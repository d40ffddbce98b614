// Package converge is godwit's convergence engine: per live migration, it
// measures the guest (dirty rate, the bandwidth the move gets), predicts
// what pre-copy will do with the pre-copy arithmetic, chooses how the
// migration is made to finish — pre-copy, post-copy or vCPU throttling —
// and switches when the migration's own pass statistics say progress
// stalls. It is pure decision logic: a driver feeds it samples and
// carries out its actions, so the QEMU driver and the fake driver run the
// same engine, and tests drive it with scripted pass statistics
// (testdata/). docs/migration-tuning.md explains the policy and its
// defaults.
package converge

import (
	"fmt"
	"math"
	"time"
)

// Prediction is what pre-copy is expected to do.
type Prediction struct {
	Converges bool
	Passes    int           // memory passes until the rest fits the downtime
	Total     time.Duration // until the switch-over
	Factor    float64       // Total over the bound (memory / bandwidth)
}

// maxPasses bounds the simulation; QEMU itself never gives up, but a
// pre-copy that needs more passes than this is not converging in any
// sense an operator cares about.
const maxPasses = 30

// PredictPreCopy runs the pre-copy arithmetic: the first pass sends mem
// bytes at bandwidth B; each later pass sends what the guest dirtied
// during the one before (rate D, at most the working set ws, 0 meaning
// all of mem); the switch-over comes once the rest fits in the downtime
// at B. In closed form, without the working-set cap, pass k sends
// mem·(D/B)^(k−1), so it needs n ≥ ln(B·downtime/mem)/ln(D/B) passes and
// takes about mem/(B−D) in all; the cap is what lets a small hot set
// converge at rates near B, so it is simulated rather than solved.
func PredictPreCopy(mem, ws int64, dirty, bandwidth float64, downtime time.Duration) Prediction {
	return predict(mem, ws, bandwidth, downtime, func(float64) float64 { return dirty })
}

// PredictThrottled is PredictPreCopy for a guest whose dirty rate drops
// from dirty to throttled once lag has passed: QEMU applies an
// auto-converge throttle only from its third dirty-bitmap sync (it must
// see pre-copy fall behind twice, at least a second apart), so the first
// passes of a move run at the guest's full rate whatever the throttle.
func PredictThrottled(mem, ws int64, dirty, throttled, bandwidth float64, downtime, lag time.Duration) Prediction {
	return predict(mem, ws, bandwidth, downtime, func(at float64) float64 {
		if at < lag.Seconds() {
			return dirty
		}
		return throttled
	})
}

// predict simulates pre-copy passes; rateAt is the dirty rate at a time
// (seconds) into the move, taken at each pass's start.
func predict(mem, ws int64, bandwidth float64, downtime time.Duration, rateAt func(float64) float64) Prediction {
	if mem <= 0 {
		return Prediction{Converges: true} // nothing left: the switch-over is due
	}
	if bandwidth <= 0 {
		return Prediction{}
	}
	if ws <= 0 || ws > mem {
		ws = mem
	}
	bound := float64(mem) / bandwidth
	fits := bandwidth * downtime.Seconds()
	rest, total := float64(mem), 0.0
	for pass := 1; pass <= maxPasses; pass++ {
		t := rest / bandwidth
		rest = math.Min(rateAt(total)*t, float64(ws))
		total += t
		if rest <= fits {
			total += rest / bandwidth
			return Prediction{Converges: true, Passes: pass, Total: seconds(total), Factor: total / bound}
		}
	}
	return Prediction{Passes: maxPasses, Total: seconds(total), Factor: total / bound}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Describe says a prediction in words, for migration show.
func (p Prediction) Describe() string {
	if !p.Converges {
		return fmt.Sprintf("pre-copy does not converge (still %d passes on)", p.Passes)
	}
	return fmt.Sprintf("pre-copy converges in %d passes, %s (%.1f× the bound)", p.Passes, p.Total.Round(10*time.Millisecond), p.Factor)
}

// throttleFor is the vCPU throttle (in %) that brings a guest dirtying at
// rate (unthrottled) down to share·bandwidth: a throttled vCPU runs
// (100−p) % of the time, and a guest's dirtying scales with the time it
// runs. Clamped to what QEMU accepts and to a floor that is worth the
// guest's slowdown.
func throttleFor(rate, bandwidth, share float64) int {
	if rate <= 0 || bandwidth <= 0 {
		return minThrottle
	}
	p := int(math.Ceil(100 * (1 - share*bandwidth/rate)))
	return min(maxThrottle, max(minThrottle, p))
}

// Throttle bounds, in %: QEMU's own floor for auto-converge is 1, its
// ceiling 99; below 20 a throttle rarely changes the outcome.
const (
	minThrottle = 20
	maxThrottle = 99
)

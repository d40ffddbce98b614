package intent

import (
	"slices"
	"sort"
	"time"

	"github.com/godwit/godwit/api"
)

// Predictions for plans. They are deliberately simple and stated in
// docs/intents.md: a plan must be honest about its assumptions, and
// measured figures (issue 5's engine) will replace the constants.
const (
	// predictBandwidthBytesPerS is what a migration moves per second
	// when the request names no cap: QEMU's default max-bandwidth, 128
	// MiB/s (about 134 MB/s).
	predictBandwidthBytesPerS = 128 << 20
	// Boot to first guest heartbeat: measured 4–7 s under TCG here; a
	// KVM guest boots in about 2 s.
	predictBootTCG = 7 * time.Second
	predictBootKVM = 2 * time.Second
	// predictStop is a graceful guest shutdown; predictSetup the
	// controller's and agents' share of a move (prepare, claims, release).
	predictStop  = 3 * time.Second
	predictSetup = 1 * time.Second
	// predictDiskRate is a local-disk copy between agents (cold): HTTP
	// over the migration network, sparse-aware.
	predictDiskRate = 200 << 20
)

func bootTime(h api.Host) time.Duration {
	if h.Accelerator == "kvm" {
		return predictBootKVM
	}
	return predictBootTCG
}

// predictMove estimates a migration's duration: every byte of memory (an
// upper bound: zero pages go faster, a busy guest's dirtied pages slower)
// and, for a local disk, its whole virtual size at the bandwidth.
// The cap, bandwidthMBPerS, is in MB/s as requested (0: QEMU's default).
func predictMove(kind api.OperationKind, vm api.VM, dst api.Host, bandwidthMBPerS int) time.Duration {
	bw := float64(predictBandwidthBytesPerS)
	if bandwidthMBPerS > 0 {
		bw = float64(bandwidthMBPerS) * api.MB
	}
	local := vm.Pool == api.PoolLocal && vm.Flavor.DiskMiB > 0
	secs := func(mib int, rate float64) time.Duration {
		return time.Duration(float64(mib) * (1 << 20) / rate * float64(time.Second))
	}
	switch kind {
	case api.OpLive:
		d := predictSetup + secs(vm.Flavor.MemoryMiB, bw)
		if local {
			d += secs(vm.Flavor.DiskMiB, bw)
		}
		return d
	case api.OpCold:
		d := predictSetup
		if vm.State == api.VMRunning {
			d += predictStop + bootTime(dst)
		}
		if local {
			d += secs(vm.Flavor.DiskMiB, predictDiskRate)
		}
		return d
	}
	return 0
}

// moveStrategy names the driver strategy a migration is expected to run.
func moveStrategy(kind api.OperationKind, vm api.VM) api.Strategy {
	local := vm.Pool == api.PoolLocal && vm.Flavor.DiskMiB > 0
	switch {
	case kind == api.OpLive && local:
		return api.StrategyLiveBlockCopy
	case kind == api.OpLive:
		return api.StrategyLiveShared
	case local:
		return api.StrategyDiskTransfer
	default:
		return api.StrategyColdShared
	}
}

// drainMakespan predicts a drain: when fewer moves may send memory than
// may run, the others prepare meanwhile, so only the first move's setup
// is paid in full and the transfers follow one another at the link's
// share (cold moves are counted whole, as ever).
func drainMakespan(ops []api.Operation, l limits) time.Duration {
	if l.transfers <= 0 || l.transfers >= l.perIntent {
		return makespan(ops, l.perIntent, l.perDest)
	}
	var setup time.Duration
	short := slices.Clone(ops)
	for i, op := range short {
		if op.Kind == api.OpLive && op.PredictedMS > predictSetup.Milliseconds() {
			short[i].PredictedMS -= predictSetup.Milliseconds()
			setup = predictSetup
		}
	}
	return setup + makespan(short, l.transfers, l.perDest)
}

// makespan predicts how long operations take together when at most
// perSource run at once (they all leave one host) and at most perDest go
// to one destination at a time: list scheduling in plan order, each
// operation starting as soon as both limits allow.
func makespan(ops []api.Operation, perSource, perDest int) time.Duration {
	var slots []time.Duration // end times of the running operations
	destFree := map[string][]time.Duration{}
	var end time.Duration
	for _, op := range ops {
		if op.PredictedMS == 0 {
			continue
		}
		d := time.Duration(op.PredictedMS) * time.Millisecond
		start := time.Duration(0)
		if len(slots) >= perSource {
			sort.Slice(slots, func(i, j int) bool { return slots[i] < slots[j] })
			start = slots[0]
			slots = slots[1:]
		}
		if ds := destFree[op.Destination]; len(ds) >= perDest {
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			start = max(start, ds[0])
			destFree[op.Destination] = ds[1:]
		}
		fin := start + d
		slots = append(slots, fin)
		destFree[op.Destination] = append(destFree[op.Destination], fin)
		end = max(end, fin)
	}
	return end
}

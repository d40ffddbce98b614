package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
)

// The encryption scenario: what encrypting a move costs. Two two-host
// clusters run at once, one without a CA and one with (mutual TLS, QEMU's
// TLS migration channel); the same guest is moved back and forth in each,
// alternately, without a bandwidth cap, so that the CPU (TLS's
// cipher, and TCG on the same cores) rather than the cap sets the pace.
const (
	encGuestMiB = 512 // the guest, with a 256 MiB dirty set filled once
	encDirtyMiB = 256
	encRuns     = 4 // moves per cluster
)

// encRun is one move of the encryption scenario.
type encRun struct {
	Encrypted  bool
	State      api.MigrationState
	Reason     string
	TotalMS    int64
	DowntimeMS int64
	Bytes      int64   // memory sent
	CPUSeconds float64 // the machine's busy CPU time during the move
}

func (r encRun) throughput() float64 { return float64(r.Bytes) / (float64(r.TotalMS) / 1000) }

// cpuPerGiB is the CPU time the machine spent per GiB sent.
func (r encRun) cpuPerGiB() float64 { return r.CPUSeconds / (float64(r.Bytes) / (1 << 30)) }

// runEncryption runs the scenario's two clusters side by side.
func (b *bench) runEncryption(ctx context.Context, dir string) ([]encRun, error) {
	var cs [2]*cluster
	for i, enc := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "encrypted"}[enc]
		c, err := b.startCluster(ctx, name, gcluster.Options{TLS: enc, Dir: filepath.Join(dir, name), Hosts: 2, AgentArgs: b.cfg.AgentArgs})
		if err != nil {
			return nil, fmt.Errorf("%s cluster: %w", name, err)
		}
		defer c.stop()
		cs[i] = c
		if err := c.createVMs(ctx, gcluster.HostName(1), []vmSpec{{name: "enc", memoryMiB: encGuestMiB, dirtyMiB: encDirtyMiB}}, hbHz); err != nil {
			return nil, err
		}
	}
	var runs []encRun
	for i := 0; i < encRuns; i++ {
		for j, c := range cs {
			r, err := b.encMove(ctx, c, j == 1)
			if err != nil {
				return runs, err
			}
			runs = append(runs, r)
			b.log.Info("encryption run", "encrypted", r.Encrypted, "state", r.State, "total_ms", r.TotalMS,
				"mb_per_s", int(r.throughput()/1e6), "cpu_s", fmt.Sprintf("%.2f", r.CPUSeconds))
		}
	}
	return runs, nil
}

// encMove moves the scenario's guest to the other host, uncapped, and
// measures it.
func (b *bench) encMove(ctx context.Context, c *cluster, encrypted bool) (encRun, error) {
	vm, err := c.client.VM(ctx, "enc")
	if err != nil {
		return encRun{}, err
	}
	before, err := busyCPU()
	if err != nil {
		return encRun{}, err
	}
	start := time.Now()
	m, err := c.client.Migrate(ctx, "enc", api.MigrateRequest{Kind: api.KindLive, To: otherHost(vm.Host), Policy: api.PolicyPreCopy})
	if err != nil {
		return encRun{}, fmt.Errorf("migrate: %w", err)
	}
	if m, _, err = b.follow(ctx, c, m, start, b.cfg.Limit); err != nil {
		return encRun{}, err
	}
	after, err := busyCPU()
	if err != nil {
		return encRun{}, err
	}
	r := encRun{Encrypted: m.Encrypted, State: m.State, Reason: m.Reason, TotalMS: m.Progress.TotalTimeMS,
		DowntimeMS: m.Progress.DowntimeMS, Bytes: m.Progress.MemoryTransferred, CPUSeconds: after - before}
	if m.Encrypted != encrypted {
		return r, fmt.Errorf("a move in the %s cluster reports encrypted=%v", map[bool]string{false: "plain", true: "encrypted"}[encrypted], m.Encrypted)
	}
	if err := c.waitBeating(ctx, "enc", 60*time.Second); err != nil {
		return r, err
	}
	return r, sleep(ctx, time.Second)
}

// busyCPU is the machine's CPU time spent so far outside idle and I/O
// wait, in seconds (/proc/stat; its ticks are USER_HZ, 100 a second on
// Linux).
func busyCPU() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat: %q", line)
	}
	var busy int64
	for i, s := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is counted in user already
			break
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return float64(busy) / 100, nil
}

// encTable lists the moves and, last, the medians side by side.
func encTable(runs []encRun) *table {
	t := newTable("run", "streams", "state", "QEMU total", "downtime", "memory sent", "throughput", "CPU time", "CPU per GiB").
		alignRight(0, 3, 4, 5, 6, 7, 8)
	for i, r := range runs {
		what := map[bool]string{false: "plain", true: "TLS"}[r.Encrypted]
		if r.State != api.MigCompleted {
			t.add(strconv.Itoa(i/2+1), what, string(r.State)+": "+r.Reason, "–", "–", "–", "–", "–", "–")
			continue
		}
		t.add(strconv.Itoa(i/2+1), what, string(r.State), fmtSeconds(r.TotalMS), fmtMS(r.DowntimeMS, true),
			fmt.Sprintf("%d MiB", r.Bytes>>20), fmt.Sprintf("%.0f MB/s", r.throughput()/1e6),
			fmt.Sprintf("%.2f s", r.CPUSeconds), fmt.Sprintf("%.2f s", r.cpuPerGiB()))
	}
	return t
}

// encSummary is the medians of each kind and their ratio, in words.
func encSummary(runs []encRun) string {
	var tp, cpu [2][]float64
	for _, r := range runs {
		if r.State != api.MigCompleted || r.Bytes == 0 {
			continue
		}
		k := 0
		if r.Encrypted {
			k = 1
		}
		tp[k], cpu[k] = append(tp[k], r.throughput()), append(cpu[k], r.cpuPerGiB())
	}
	if len(tp[0]) == 0 || len(tp[1]) == 0 {
		return "not enough completed moves of both kinds to compare"
	}
	p, e := medianF(tp[0]), medianF(tp[1])
	pc, ec := medianF(cpu[0]), medianF(cpu[1])
	return fmt.Sprintf("median throughput %.0f MB/s plain, %.0f MB/s encrypted (%.2f×); CPU per GiB sent %.2f s plain, %.2f s encrypted (%.2f×)",
		p/1e6, e/1e6, e/p, pc, ec, ec/pc)
}

func medianF(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

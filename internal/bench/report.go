package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/godwit/godwit/internal/hostinfo"
	"github.com/godwit/godwit/internal/version"
)

// machine is what the report says the benchmark ran on.
type machine struct {
	Date        time.Time
	CPUModel    string
	Cores       int
	MemMiB      int
	Kernel      string
	QEMU        string
	Accel       string
	AccelReason string
	Godwit      string
	LoadAvg     string // at the start: other work on the machine skews TCG figures
	// OtherQEMUs are QEMU processes already running at the start (a
	// make demo cluster left up, say): each takes CPU from the guests
	// and migrations measured, under TCG a lot of it.
	OtherQEMUs []int
}

func describeMachine(ctx context.Context, acc, reason string) machine {
	m := machine{Date: time.Now(), Cores: runtime.NumCPU(), MemMiB: hostinfo.MemTotalMiB(),
		Accel: acc, AccelReason: reason, Godwit: version.Version}
	m.CPUModel, _ = hostinfo.CPUInfo()
	if out, err := exec.CommandContext(ctx, "qemu-system-x86_64", "--version").Output(); err == nil {
		m.QEMU, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.OtherQEMUs = hostinfo.QEMUPIDs("")
	return m
}

func (m machine) summary() string {
	return fmt.Sprintf("%s, %d cores, %.1f GiB RAM; %s; accelerator %s", m.CPUModel, m.Cores, float64(m.MemMiB)/1024, m.QEMU, m.Accel)
}

func (m machine) table() *table {
	t := newTable("", "")
	t.add("date", m.Date.Format("2006-01-02 15:04 MST"))
	t.add("CPU", fmt.Sprintf("%s, %d cores", m.CPUModel, m.Cores))
	t.add("RAM", fmt.Sprintf("%.1f GiB", float64(m.MemMiB)/1024))
	t.add("host kernel", m.Kernel)
	t.add("QEMU", m.QEMU)
	t.add("accelerator", fmt.Sprintf("%s (%s)", m.Accel, m.AccelReason))
	t.add("godwit", m.Godwit)
	t.add("load average at the start", m.LoadAvg)
	others := "none"
	if len(m.OtherQEMUs) > 0 {
		others = fmt.Sprintf("%d (PIDs %v): the figures are skewed; stop them (godwit down) and run again", len(m.OtherQEMUs), m.OtherQEMUs)
	}
	t.add("other QEMU processes at the start", others)
	return t
}

// closingHeading starts the hand-written part of the report, which a new
// run keeps.
const closingHeading = "## Closing note"

// writeReport writes the Markdown report: the machine, each scenario's
// table with how it was run, and the targets. A closing note already in
// the file is kept.
func writeReport(path string, m machine, cfg Config, r results, vs []verdict) error {
	closing := closingHeading + "\n\nTo be written from a full run: which targets were met, which were missed and why.\n"
	if old, err := os.ReadFile(path); err == nil {
		if i := strings.Index(string(old), "\n"+closingHeading+"\n"); i >= 0 {
			closing = string(old[i+1:])
		}
	}
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` (cmd/godwit-bench, internal/bench): a real cluster on one machine — the `godwit`\n" +
		"binary as controller and agents in separate processes, QEMU running the test guest — driven through the\n" +
		"public API. Rerun with `make bench`; this file is regenerated except for its closing note.\n\n")
	if cfg.Quick {
		b.WriteString("**This is a quick smoke run (`-quick`): one dirty rate, short limits, small guests. Its figures are not the benchmark.**\n\n")
	}
	b.WriteString("## Machine\n\n" + m.table().markdown() + "\n")
	if len(r.Conv) > 0 {
		fmt.Fprintf(&b, "## Convergence\n\n"+
			"One %d MiB guest per dirty rate, %d MiB of it hot, dirtied at the rate shown (MB/s, `dirty_mb`/`dirty_rate_mb`\n"+
			"on the guest's command line); shared pool; migrated back and forth between two hosts, once per policy, with\n"+
			"QEMU's bandwidth capped at %d MB/s (1 Gbit/s). Policies: `auto` is godwit's engine; `pre-copy` is QEMU's\n"+
			"defaults with a 300 ms downtime limit (Nova, KubeVirt, libvirt); `auto-converge` throttles the guest\n"+
			"(Incus, Proxmox); `post-copy` switches after one pass (Ganeti). The peers run with the 300 ms limit. A move\n"+
			"not finished after %s is aborted and counts as not converged.\n\n"+
			"Columns: total is QEMU's total time (the end-to-end time when it has none; in parentheses when the move did\n"+
			"not converge); end to end runs from the migrate request to the moment polling (every %s) sees it end;\n"+
			"bound = (RAM − zero pages) / bandwidth; downtime as QEMU measured it; sent/RAM is bytes sent over guest\n"+
			"RAM; worst hb gap is the longest time between two guest heartbeats (%d a second) read from the\n"+
			"source's and destination's console logs every %s, over the move and until the first heartbeat after it;\n"+
			"guest oops is a kernel oops, BUG, general protection fault or panic on the consoles (or a reboot).\n\n%s\n",
			cfg.ConvMemoryMiB, cfg.ConvDirtyMiB, convBandwidthMBPerS, cfg.Limit, migrationPoll, hbHz, consolePoll, convTable(r.Conv).markdown())
	}
	if len(r.Drain) > 0 {
		vms := drainVMs(cfg.Quick)
		var parts []string
		for _, v := range vms {
			parts = append(parts, fmt.Sprintf("%d MiB at %d MB/s", v.memoryMiB, v.rateMB))
		}
		fmt.Fprintf(&b, "## Drain\n\n"+
			"Host1 runs %d guests (%s; shared pool) and is drained to host2 and host3. Each host is an agent in its own\n"+
			"network namespace, joined to a bridge by a veth pair shaped to %s both ways with tbf, so concurrent moves\n"+
			"share one real link; the agents listen, and QEMU receives migrations, on the namespace's address. Makespan\n"+
			"runs from the drain request to the intent's end; bound = sum over the moves of (RAM − zero pages) at the\n"+
			"link rate (125 MB/s); sent/non-zero is the memory sent over the non-zero memory (above 1: pages re-sent).\n"+
			"The guests are booted anew on host1 before each drain.\n\n%s\n",
			len(vms), strings.Join(parts, ", "), labLinkRate, drainTable(r.Drain).markdown())
	}
	if len(r.Overhead) > 0 {
		fmt.Fprintf(&b, "## Control-plane overhead\n\n"+
			"An idle 256 MiB guest on the shared pool, live-migrated back and forth %d times (capped at %d MB/s): the\n"+
			"end-to-end time, from the migrate request to the moment polling (every %s) sees the record completed,\n"+
			"minus QEMU's own total time. Where it goes, from the migration's recorded phases: prepare is from the\n"+
			"record's creation to the transfer's start (the destination's QEMU starts in it); switch-over is from the\n"+
			"switch-over to completed (the destination runs, the source's QEMU quits and its taps go); rest is the\n"+
			"request, the gap between the phases and QEMU's own clock, and the polling.\n\n%s\n", len(r.Overhead), convBandwidthMBPerS, migrationPoll, overheadTable(r.Overhead).markdown())
	}
	if len(r.Encryption) > 0 {
		fmt.Fprintf(&b, "## Encrypted moves\n\n"+
			"Two 2-host clusters side by side, one without a CA and one with (mutual TLS, QEMU's TLS migration channel):\n"+
			"a %d MiB guest with a %d MiB dirty set moved back and forth in each, alternately, pre-copy, without a bandwidth\n"+
			"cap. CPU time is the whole machine's busy time during the move (/proc/stat).\n\n%s\n%s.\n\n",
			encGuestMiB, encDirtyMiB, encTable(r.Encryption).markdown(), encSummary(r.Encryption))
	}
	b.WriteString("## Targets\n\nFrom issues 5 and 13; godwit's own runs (policy `auto`, its default drain) are held to them.\n\n")
	b.WriteString(verdictTable(vs).markdown() + "\n")
	b.WriteString(closing)
	if !strings.HasSuffix(closing, "\n") {
		b.WriteString("\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}

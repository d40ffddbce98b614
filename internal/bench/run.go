package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/godwit/godwit/internal/accel"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/hostinfo"
	"github.com/godwit/godwit/internal/testguest"
)

// bench is one benchmark run.
type bench struct {
	cfg         Config
	log         *slog.Logger
	godwit      string // the godwit binary
	accel       string
	accelReason string
}

// Run runs the chosen scenarios, prints their tables and the targets,
// and writes the report. Every process and namespace it made is gone when
// it returns, after an error or a cancelled ctx too.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	b := &bench{cfg: cfg, log: cfg.Logger}
	if err := b.preflight(ctx); err != nil {
		return err
	}
	m := describeMachine(ctx, b.accel, b.accelReason)
	fmt.Fprintf(cfg.Stdout, "godwit-bench: %s\n\n", m.summary())
	if len(m.OtherQEMUs) > 0 {
		b.log.Warn("other QEMU processes are running: they take CPU from what is measured (a make demo cluster? godwit down stops it)", "pids", m.OtherQEMUs)
	}

	dir, made := cfg.Dir, false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "godwit-bench-"); err != nil {
			return err
		}
		made = true
	}
	defer func() {
		switch {
		case made && !cfg.Keep && err == nil:
			os.RemoveAll(dir)
		default:
			fmt.Fprintf(cfg.Stdout, "work directory (logs, consoles) kept: %s\n", dir)
		}
	}()

	res := results{Accel: b.accel}
	defer func() {
		// Whatever was measured is shown, also when a later scenario
		// failed.
		if err != nil {
			b.print(res)
		}
	}()
	if cfg.runs(scenarioConvergence) || cfg.runs(scenarioOverhead) {
		if err := b.loopbackScenarios(ctx, dir, &res); err != nil {
			return err
		}
	}
	if cfg.runs(scenarioDrain) {
		runs, err := b.runDrain(ctx, dir)
		res.Drain = runs
		if err != nil {
			return fmt.Errorf("drain scenario: %w", err)
		}
		res.Ran = append(res.Ran, scenarioDrain)
	}
	if cfg.runs(scenarioEncryption) {
		runs, err := b.runEncryption(ctx, dir)
		res.Encryption = runs
		if err != nil {
			return fmt.Errorf("encryption scenario: %w", err)
		}
		res.Ran = append(res.Ran, scenarioEncryption)
	}
	if cfg.runs(scenarioRepro) {
		sets, err := b.runRepro(ctx, dir)
		res.Repro = sets
		if err != nil {
			return fmt.Errorf("repro scenario: %w", err)
		}
	}
	b.print(res)
	switch {
	case cfg.Out != "" && len(res.Ran) == 0:
		// A report of the repro scenario alone would replace the
		// benchmark's tables with NOT RUN targets: its tables are printed
		// as Markdown for docs/migration.md instead.
		fmt.Fprintf(cfg.Stdout, "\nno report written to %s: the repro scenario measures none of its targets (its tables above are Markdown for docs/migration.md)\n", cfg.Out)
	case cfg.Out != "":
		if err := writeReport(cfg.Out, m, cfg, res, evaluate(res)); err != nil {
			return err
		}
		fmt.Fprintf(cfg.Stdout, "\nreport written to %s\n", cfg.Out)
	}
	return nil
}

// loopbackScenarios runs the convergence and overhead scenarios on one
// two-host cluster on loopback.
func (b *bench) loopbackScenarios(ctx context.Context, dir string, res *results) error {
	c, err := b.startCluster(ctx, "loopback", gcluster.Options{Dir: filepath.Join(dir, "loopback"), Hosts: 2, AgentArgs: b.cfg.AgentArgs})
	if err != nil {
		return err
	}
	defer c.stop()
	// The guests of both scenarios sit on a network unless -no-client;
	// only the convergence moves are probed.
	if (b.cfg.runs(scenarioConvergence) || b.cfg.runs(scenarioOverhead)) && !b.cfg.NoClient {
		net, err := setupClientNet(ctx, c, b.log)
		if err != nil {
			return fmt.Errorf("the guests' network: %w", err)
		}
		c.net = net
		defer func() { c.stop(); net.teardown() }() // the VMs' taps first
	}
	if b.cfg.runs(scenarioConvergence) {
		runs, err := b.runConvergence(ctx, c)
		res.Conv = runs
		if err != nil {
			return fmt.Errorf("convergence scenario: %w", err)
		}
		res.Ran = append(res.Ran, scenarioConvergence)
	}
	if b.cfg.runs(scenarioOverhead) {
		runs, err := b.runOverhead(ctx, c)
		res.Overhead = runs
		if err != nil {
			return fmt.Errorf("overhead scenario: %w", err)
		}
		res.Ran = append(res.Ran, scenarioOverhead)
	}
	return nil
}

// preflight checks what the run needs and decides the accelerator once
// for every host.
func (b *bench) preflight(ctx context.Context) error {
	if b.cfg.runs(scenarioDrain) && os.Geteuid() != 0 {
		return errors.New("the drain scenario needs root: it creates network namespaces and shapes their links with tc; run godwit-bench as root (sudo make bench), or leave it out with -scenarios convergence,overhead")
	}
	for _, tool := range []string{"qemu-system-x86_64", "ip", "tc"} {
		if tool != "qemu-system-x86_64" && !b.cfg.runs(scenarioDrain) {
			continue
		}
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: run make deps (QEMU: apt-get install qemu-system-x86; ip and tc: apt-get install iproute2)", tool)
		}
	}
	if b.cfg.runs(scenarioRepro) {
		for _, q := range b.cfg.QEMU {
			if _, err := exec.LookPath(q); err != nil {
				return fmt.Errorf("qemu binary %s (-qemu) not found: %w", q, err)
			}
		}
	}
	if why := testguest.Missing(); why != "" {
		return errors.New(why)
	}
	abs, err := filepath.Abs(b.cfg.Bin)
	if err != nil {
		return err
	}
	b.godwit = filepath.Join(abs, "godwit")
	for _, f := range []string{b.godwit, filepath.Join(abs, "godwit-guest")} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s not found: run make build first (or point -bin at the directory holding godwit and godwit-guest)", f)
		}
	}
	if len(b.cfg.Scenarios) == 1 && b.cfg.runs(scenarioRepro) {
		// The repro clusters run TCG whatever -accel says: no probe.
		b.accel, b.accelReason = "tcg", "godwit-bench: the repro scenario runs TCG"
		return nil
	}
	if b.cfg.Accel == "auto" {
		b.log.Info("probing KVM (boots the host's kernel briefly)")
	}
	b.accel, b.accelReason, err = accel.Resolve(ctx, b.cfg.Accel, hostinfo.NewestKernel())
	if err != nil {
		return err
	}
	b.accelReason = "godwit-bench: " + b.accelReason
	return nil
}

// print writes every table measured so far and the targets to stdout.
func (b *bench) print(res results) {
	w := b.cfg.Stdout
	if len(res.Conv) > 0 {
		fmt.Fprintf(w, "\nConvergence (%d MiB guest, %d MiB hot set, capped at %d MB/s, limit %s)\n\n%s",
			b.cfg.ConvMemoryMiB, b.cfg.ConvDirtyMiB, convBandwidthMBPerS, b.cfg.Limit, convTable(res.Conv).markdown())
	}
	if len(res.Drain) > 0 {
		fmt.Fprintf(w, "\nDrain (host1's guests to host2 and host3, links shaped to %s)\n\n%s", labLinkRate, drainTable(res.Drain).markdown())
	}
	if len(res.Overhead) > 0 {
		fmt.Fprintf(w, "\nControl-plane overhead (idle guest, shared pool)\n\n%s", overheadTable(res.Overhead).markdown())
	}
	if len(res.Encryption) > 0 {
		fmt.Fprintf(w, "\nEncrypted moves (%d MiB guest, uncapped, plain and TLS side by side)\n\n%s\n%s\n", encGuestMiB,
			encTable(res.Encryption).markdown(), encSummary(res.Encryption))
	}
	if len(res.Repro) > 0 {
		fmt.Fprint(w, reproMarkdown(res.Repro, b.cfg.ReproRuns))
	}
	if len(res.Ran) > 0 {
		fmt.Fprintf(w, "\nTargets\n\n%s", verdictTable(evaluate(res)).markdown())
	}
}

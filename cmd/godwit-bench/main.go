// Command godwit-bench is godwit's benchmark (make bench): it starts a
// real cluster on this machine, measures live migration under godwit's
// convergence engine and the peers' policies, a host drain over shaped
// links and the controller's overhead, prints tables with PASS/FAIL per
// target and writes docs/benchmarks.md. See internal/bench.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/godwit/godwit/internal/bench"
)

func main() {
	cfg := bench.Defaults()
	scenarios := flag.String("scenarios", strings.Join(cfg.Scenarios, ","), "scenarios to run: convergence, drain, overhead; repro (not by default) reproduces QEMU 7.2's TCG migration defect")
	rates := flag.String("rates", "0,50,100,200,300", "dirty rates of the convergence guest, MB/s")
	policies := flag.String("policies", strings.Join(cfg.Policies, ","), "convergence policies compared at every rate")
	drains := flag.String("drains", strings.Join(cfg.Drains, ","), "drains in the order they run (a name twice runs it twice): godwit, one-at-a-time, two-at-a-time")
	flag.DurationVar(&cfg.Limit, "limit", cfg.Limit, "time a convergence migration may take before it is aborted")
	flag.StringVar(&cfg.Out, "out", cfg.Out, "Markdown report to write (empty: none)")
	quick := flag.Bool("quick", false, "smoke test: one dirty rate, 30 s limit, small guests, 3 overhead runs")
	flag.StringVar(&cfg.Bin, "bin", cfg.Bin, "directory holding godwit and godwit-guest (make build)")
	flag.StringVar(&cfg.Dir, "dir", "", "work directory (default: a temporary one)")
	flag.BoolVar(&cfg.NoClient, "no-client", false, "no VM networks and no client measuring each move (the guests see no network traffic)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the work directory (logs, console logs, heartbeat timelines under loopback/timelines)")
	flag.StringVar(&cfg.Accel, "accel", cfg.Accel, "accelerator: kvm, tcg, or auto (probe KVM by booting a kernel)")
	flag.IntVar(&cfg.OverheadRuns, "overhead-runs", cfg.OverheadRuns, "migrations of the overhead scenario")
	qemu := flag.String("qemu", "qemu-system-x86_64", "repro scenario: QEMU binaries to compare, comma-separated; one cluster each, in turn")
	flag.IntVar(&cfg.ReproRuns, "repro-runs", cfg.ReproRuns, "repro scenario: heavy migrations per QEMU binary")
	agentArgs := flag.String("agent-args", "", "more flags for every agent, space-separated (e.g. --no-postcopy-preempt)")
	level := flag.String("log-level", "info", "log level: debug, info, warn, error")
	flag.Parse()
	cfg.AgentArgs = strings.Fields(*agentArgs)

	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fail(fmt.Errorf("bad -log-level: %w", err))
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	cfg.Stdout = os.Stdout
	cfg.Scenarios = bench.ParseList(*scenarios)
	cfg.Policies = bench.ParseList(*policies)
	cfg.Drains = bench.ParseList(*drains)
	cfg.QEMU = bench.ParseList(*qemu)
	r, err := bench.ParseRates(*rates)
	if err != nil {
		fail(err)
	}
	cfg.Rates = r
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		cfg.ApplyQuick(func(name string) bool { return set[name] })
	}

	// Ctrl-C or SIGTERM ends the run; Run still stops every process and
	// removes the namespaces it made before it returns.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err = bench.Run(ctx, cfg)
	stop()
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "godwit-bench:", err)
	os.Exit(1)
}

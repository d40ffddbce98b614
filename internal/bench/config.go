package bench

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
)

// Scenario names, as -scenarios takes them.
const (
	scenarioConvergence = "convergence"
	scenarioDrain       = "drain"
	scenarioOverhead    = "overhead"
	scenarioEncryption  = "encryption"
	scenarioRepro       = "repro"
)

// Scenarios lists the default scenarios in the order they run.
var Scenarios = []string{scenarioConvergence, scenarioDrain, scenarioOverhead, scenarioEncryption}

// OptionalScenarios run only when -scenarios names them: repro compares
// QEMU builds (hours under TCG) and measures no target of the report.
var OptionalScenarios = []string{scenarioRepro}

// Config says what to run. Zero fields take the defaults (Defaults).
type Config struct {
	Scenarios []string
	Rates     []int    // MB/s the convergence guest dirties, one scenario each
	Policies  []string // convergence policies compared at every rate
	Limit     time.Duration
	// Drains are the drain variants in the order they run; a name given
	// twice runs twice (the first drain of a cluster may differ).
	Drains []string
	// Out is the Markdown report; empty writes none.
	Out string
	// Quick is a smoke test: one rate, short limits, small guests.
	Quick bool
	// Bin holds godwit and godwit-guest (make build's bin/).
	Bin string
	// Dir is the work directory; empty for a temporary one, removed at
	// the end unless Keep (or a failure: its logs then say why).
	Dir  string
	Keep bool
	// NoClient runs the moves without VM networks and the client that
	// measures them (clientnet.go): the guests then see no network
	// traffic, as in the benchmark before issue 15.
	NoClient bool
	Accel    string // kvm, tcg or auto
	// AgentArgs are flags every agent gets besides the bench's own, e.g.
	// --no-postcopy-preempt to measure what postcopy-preempt gains.
	AgentArgs []string

	ConvMemoryMiB int
	ConvDirtyMiB  int
	OverheadRuns  int
	// Settle is how long a freshly booted or moved guest runs before the
	// next move, once it has filled its working set: long enough for the
	// agent's dirty-rate sampler (every 5 s, 1 s each) to measure the
	// guest at its rate rather than while it filled the set.
	Settle time.Duration

	// QEMU lists the qemu-system-x86_64 binaries the repro scenario runs
	// on, one cluster each; empty means the one on PATH.
	QEMU []string
	// ReproRuns is how many heavy migrations the repro scenario makes
	// per QEMU binary.
	ReproRuns int

	Logger *slog.Logger
	Stdout io.Writer
}

// Defaults are the settings: a 1 GiB guest with a 256 MiB hot set
// at five dirty rates, every policy, 120 s each, 10 overhead runs.
func Defaults() Config {
	return Config{
		Scenarios:     slices.Clone(Scenarios),
		Rates:         []int{0, 50, 100, 200, 300},
		Policies:      policyNames(),
		Drains:        []string{drainGodwit, drainOne, drainTwo},
		Limit:         120 * time.Second,
		Out:           "docs/benchmarks.md",
		Bin:           "bin",
		Accel:         "auto",
		ConvMemoryMiB: 1024,
		ConvDirtyMiB:  256,
		OverheadRuns:  10,
		Settle:        8 * time.Second,
		ReproRuns:     20,
	}
}

// ApplyQuick turns cfg into a smoke test, keeping what set says was set
// on the command line: one rate (100 MB/s), a 30 s limit, a 512 MiB guest
// with a 128 MiB hot set, 3 overhead runs, 256 MiB drain guests.
func (cfg *Config) ApplyQuick(set func(flag string) bool) {
	cfg.Quick = true
	if !set("rates") {
		cfg.Rates = []int{100} // pre-copy still converges at the cap
	}
	if !set("limit") {
		cfg.Limit = 30 * time.Second
	}
	cfg.ConvMemoryMiB, cfg.ConvDirtyMiB = 512, 128
	if !set("overhead-runs") {
		cfg.OverheadRuns = 3
	}
}

// validate checks the lists and fills what is empty.
func (cfg *Config) validate() error {
	d := Defaults()
	if len(cfg.Scenarios) == 0 {
		cfg.Scenarios = d.Scenarios
	}
	for _, s := range cfg.Scenarios {
		if !slices.Contains(Scenarios, s) && !slices.Contains(OptionalScenarios, s) {
			return fmt.Errorf("unknown scenario %q; use %s", s, strings.Join(append(slices.Clone(Scenarios), OptionalScenarios...), ","))
		}
	}
	for _, p := range cfg.Policies {
		if !api.Policy(p).Known() {
			return fmt.Errorf("unknown policy %q; use %s", p, strings.Join(policyNames(), ","))
		}
	}
	for _, r := range cfg.Rates {
		if r < 0 || r > 10_000 {
			return fmt.Errorf("dirty rate %d MB/s is out of range (0–10000)", r)
		}
	}
	if len(cfg.Policies) == 0 {
		cfg.Policies = d.Policies
	}
	if len(cfg.Drains) == 0 {
		cfg.Drains = d.Drains
	}
	for _, n := range cfg.Drains {
		if _, ok := drainVariantNamed(n); !ok {
			return fmt.Errorf("unknown drain %q; use %s, %s or %s", n, drainGodwit, drainOne, drainTwo)
		}
	}
	if len(cfg.Rates) == 0 {
		cfg.Rates = d.Rates
	}
	if cfg.Limit <= 0 {
		cfg.Limit = d.Limit
	}
	if cfg.ConvMemoryMiB == 0 {
		cfg.ConvMemoryMiB, cfg.ConvDirtyMiB = d.ConvMemoryMiB, d.ConvDirtyMiB
	}
	if cfg.ConvDirtyMiB >= cfg.ConvMemoryMiB {
		return fmt.Errorf("the hot set (%d MiB) must be smaller than the guest (%d MiB)", cfg.ConvDirtyMiB, cfg.ConvMemoryMiB)
	}
	if cfg.OverheadRuns <= 0 {
		cfg.OverheadRuns = d.OverheadRuns
	}
	if cfg.Settle <= 0 {
		cfg.Settle = d.Settle
	}
	if cfg.ReproRuns <= 0 {
		cfg.ReproRuns = d.ReproRuns
	}
	if len(cfg.QEMU) == 0 {
		cfg.QEMU = []string{"qemu-system-x86_64"}
	}
	if cfg.Bin == "" {
		cfg.Bin = d.Bin
	}
	if cfg.Accel == "" {
		cfg.Accel = d.Accel
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	return nil
}

func (cfg *Config) runs(s string) bool { return slices.Contains(cfg.Scenarios, s) }

// ParseList splits a comma-separated flag value, dropping empty items.
func ParseList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ParseRates parses a comma-separated list of MB/s.
func ParseRates(s string) ([]int, error) {
	var out []int
	for _, f := range ParseList(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("dirty rate %q is not a number of MB/s", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// policyNames are the convergence policies, as the -policies flag takes
// them.
func policyNames() []string {
	names := make([]string, len(api.Policies))
	for i, p := range api.Policies {
		names[i] = string(p)
	}
	return names
}

package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The typed vocabulary and the renamed fields write the JSON they did
// before, but for the bandwidth cap's new name: the wire and the stored
// records are unchanged.
func TestJSONUnchanged(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	m := Migration{ID: "m1", Intent: "i1", VM: "web", VMID: "v1", Kind: KindLive, State: MigCompleted, Source: "h1", Destination: "h2",
		Strategy: StrategyLiveShared.With(TechniquePostCopy), MaxDowntimeMS: 100, BandwidthMBPerS: 125, PostCopy: true, AutoConverge: true, Policy: PolicyAuto,
		Convergence: &Convergence{Policy: PolicyAuto, Strategy: TechniquePostCopy, Bandwidth: 125e6},
		Phases:      []Phase{{State: MigQueued, At: at}}, CreatedAt: at}
	in := Intent{ID: "i1", Kind: IntentDrain, Target: "h1", State: IntentRunning,
		Params: IntentParams{OnFailure: OnFailureCold, MaxPerDestination: 2, MaxPerCluster: 3, BandwidthMBPerS: 50, Policy: PolicyPreCopy,
			Migrate: &MigrateRequest{Kind: KindCold, BandwidthMBPerS: 7, Policy: PolicyPostCopy}},
		Operations: []Operation{{VM: "web", Kind: OpLive, State: OpDone, Source: "h1", Destination: "h2", Strategy: StrategyDiskTransfer}}}
	d := DrainRequest{OnFailure: OnFailureAbort, MaxPerDestination: 1, MaxPerCluster: 2, BandwidthMBPerS: 9, Policy: PolicyAutoConverge}
	for _, tt := range []struct {
		v    any
		want string
	}{
		{m, `{"id":"m1","intent":"i1","vm":"web","vm_id":"v1","kind":"live","state":"completed","source":"h1","destination":"h2","strategy":"shared-storage/pre-copy+post-copy","max_downtime_ms":100,"bandwidth_mb_per_s":125,"post_copy":true,"auto_converge":true,"policy":"auto","convergence":{"policy":"auto","dirty_rate":0,"bandwidth":125000000,"strategy":"post-copy","post_copy_allowed":false},"progress":{"memory_total":0,"memory_transferred":0,"memory_remaining":0,"dirty_rate":0,"throughput":0,"pass":0,"expected_downtime_ms":0},"phases":[{"state":"queued","at":"2025-01-02T03:04:05Z"}],"created_at":"2025-01-02T03:04:05Z","updated_at":"0001-01-01T00:00:00Z","finished_at":"0001-01-01T00:00:00Z"}`},
		{in, `{"id":"i1","kind":"drain","target":"h1","state":"running","params":{"migrate":{"kind":"cold","bandwidth_mb_per_s":7,"policy":"post-copy"},"on_failure":"cold","max_per_destination":2,"max_per_cluster":3,"bandwidth_mb_per_s":50,"policy":"pre-copy"},"operations":[{"vm":"web","vm_id":"","kind":"live","state":"done","source":"h1","destination":"h2","strategy":"local-disk/disk-transfer","started_at":"0001-01-01T00:00:00Z","finished_at":"0001-01-01T00:00:00Z"}],"created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z","finished_at":"0001-01-01T00:00:00Z"}`},
		{d, `{"on_failure":"abort","max_per_destination":1,"max_per_cluster":2,"bandwidth_mb_per_s":9,"policy":"auto-converge"}`},
	} {
		b, err := json.Marshal(tt.v)
		if err != nil || string(b) != tt.want {
			t.Errorf("%T encodes as\n%s (%v)\nwant\n%s", tt.v, b, err, tt.want)
		}
	}
}

// Records and clients from before the rename say bandwidth_mbps: it is
// read; the new name wins when both are there.
func TestOldBandwidthName(t *testing.T) {
	var m Migration
	if err := json.Unmarshal([]byte(`{"id":"m1","state":"completed","bandwidth_mbps":125,"phases":[{"state":"queued"}]}`), &m); err != nil ||
		m.BandwidthMBPerS != 125 || m.ID != "m1" || m.State != MigCompleted || len(m.Phases) != 1 {
		t.Errorf("old migration record: %+v, %v", m, err)
	}
	m = Migration{}
	if err := json.Unmarshal([]byte(`{"bandwidth_mbps":125,"bandwidth_mb_per_s":50}`), &m); err != nil || m.BandwidthMBPerS != 50 {
		t.Errorf("both names: %d, %v; want the new one, 50", m.BandwidthMBPerS, err)
	}
	var in Intent
	if err := json.Unmarshal([]byte(`{"id":"i1","kind":"drain","params":{"on_failure":"cold","bandwidth_mbps":40}}`), &in); err != nil ||
		in.Params.BandwidthMBPerS != 40 || in.Params.OnFailure != OnFailureCold || in.Kind != IntentDrain {
		t.Errorf("old intent record: %+v, %v", in, err)
	}
	b, _ := json.Marshal(in)
	if strings.Contains(string(b), "bandwidth_mbps") || !strings.Contains(string(b), `"bandwidth_mb_per_s":40`) {
		t.Errorf("re-encoded: %s; want only the new name", b)
	}

	var req MigrateRequest
	dec := json.NewDecoder(strings.NewReader(`{"kind":"live","bandwidth_mbps":20}`))
	dec.DisallowUnknownFields() // as the controller decodes requests
	if err := dec.Decode(&req); err != nil {
		t.Fatal(err)
	}
	if err := req.Normalize(); err != nil || req.BandwidthMBPerS != 20 || req.BandwidthMBps != 0 {
		t.Errorf("old request normalized: %+v, %v", req, err)
	}
	dr := DrainRequest{BandwidthMBPerS: 20, BandwidthMBps: 30}
	if err := dr.Normalize(); err == nil || !strings.Contains(err.Error(), "send one") {
		t.Errorf("two different caps: %v; want refused", err)
	}
	dr = DrainRequest{BandwidthMBPerS: 20, BandwidthMBps: 20}
	if err := dr.Normalize(); err != nil || dr.BandwidthMBPerS != 20 || dr.BandwidthMBps != 0 {
		t.Errorf("the same cap twice: %+v, %v", dr, err)
	}
}

func TestStrategy(t *testing.T) {
	for _, tt := range []struct {
		s                    Strategy
		postCopy, throttled  bool
		withAC, withPostCopy Strategy
	}{
		{StrategyLiveShared, false, false, "shared-storage/pre-copy+auto-converge", "shared-storage/pre-copy+post-copy"},
		{StrategyLiveBlockCopy, false, false, "block-copy/pre-copy+auto-converge", "block-copy/pre-copy+post-copy"},
		{"shared-storage/pre-copy+post-copy", true, false, "shared-storage/pre-copy+auto-converge+post-copy", "shared-storage/pre-copy+post-copy"},
		{"shared-storage/pre-copy+auto-converge", false, true, "shared-storage/pre-copy+auto-converge", "shared-storage/pre-copy+auto-converge+post-copy"},
		{"shared-storage/post-copy", true, false, "shared-storage/auto-converge+post-copy", "shared-storage/post-copy"},
		{StrategyDiskTransfer, false, false, "local-disk/disk-transfer+auto-converge", "local-disk/disk-transfer+post-copy"},
	} {
		if tt.s.PostCopy() != tt.postCopy || tt.s.AutoConverge() != tt.throttled {
			t.Errorf("%s: post-copy %v, auto-converge %v; want %v, %v", tt.s, tt.s.PostCopy(), tt.s.AutoConverge(), tt.postCopy, tt.throttled)
		}
		if got := tt.s.With(TechniqueAutoConverge); got != tt.withAC {
			t.Errorf("%s with auto-converge = %s; want %s", tt.s, got, tt.withAC)
		}
		if got := tt.s.With(TechniquePostCopy); got != tt.withPostCopy {
			t.Errorf("%s with post-copy = %s; want %s", tt.s, got, tt.withPostCopy)
		}
	}
	// "copy" is no technique: only whole parts count.
	if Strategy("block-copy/pre-copy").Has("copy") || StrategyColdShared.Has(TechniquePreCopy) {
		t.Error("Has matched part of a name")
	}
}

func TestFinal(t *testing.T) {
	for s, want := range map[MigrationState]bool{MigQueued: false, MigWaitingLink: false, MigSwitchingOver: false, MigFinishing: false,
		MigCompleted: true, MigRolledBack: true, MigCancelled: true, MigNeedsAttention: true} {
		if s.Final() != want {
			t.Errorf("migration state %s: final %v", s, s.Final())
		}
	}
	for s, want := range map[IntentState]bool{IntentRunning: false, IntentCancelling: false, IntentPlanned: true, IntentCompleted: true,
		IntentPartial: true, IntentFailed: true, IntentCancelled: true} {
		if s.Final() != want {
			t.Errorf("intent state %s: final %v", s, s.Final())
		}
	}
	if k, ok := OpCold.Migration(); !ok || k != KindCold || KindLive.Operation() != OpLive {
		t.Error("operation and migration kinds do not map")
	}
	if _, ok := OpResize.Migration(); ok {
		t.Error("a resize is a migration")
	}
	if !PolicyPostCopy.Known() || Policy("fast").Known() {
		t.Error("Policy.Known")
	}
}

// RecordPass keeps one entry per pass, with the rates of its last read
// and the remaining memory of its first, and only the latest MaxPasses.
func TestRecordPass(t *testing.T) {
	at := time.Unix(0, 0)
	var ps []PassStat
	ps = RecordPass(ps, MigrationProgress{Pass: 0, MemoryRemaining: 9}, at) // setup: no pass yet
	ps = RecordPass(ps, MigrationProgress{Pass: 1, MemoryRemaining: 100, DirtyRate: 5}, at)
	ps = RecordPass(ps, MigrationProgress{Pass: 1, MemoryRemaining: 60, DirtyRate: 7, Throughput: 3}, at)
	ps = RecordPass(ps, MigrationProgress{Pass: 3, MemoryRemaining: 20, DirtyRate: 8}, at)
	ps = RecordPass(ps, MigrationProgress{Pass: 2, MemoryRemaining: 1}, at) // an older read, late: ignored
	want := []PassStat{{Pass: 1, MemoryRemaining: 100, DirtyRate: 7, Throughput: 3, At: at}, {Pass: 3, MemoryRemaining: 20, DirtyRate: 8, At: at}}
	if !reflect.DeepEqual(ps, want) {
		t.Errorf("passes %+v, want %+v", ps, want)
	}
	for i := 4; i < 4+MaxPasses; i++ {
		ps = RecordPass(ps, MigrationProgress{Pass: i}, at)
	}
	if len(ps) != MaxPasses || ps[0].Pass != 4 || ps[len(ps)-1].Pass != 3+MaxPasses {
		t.Errorf("%d passes kept, from %d to %d; want the latest %d", len(ps), ps[0].Pass, ps[len(ps)-1].Pass, MaxPasses)
	}
}

package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s changed (go test -update if intended); got:\n%s\nwant:\n%s", name, got, want)
	}
}

var (
	now     = time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)
	created = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
)

func testHosts() []api.Host {
	return []api.Host{
		{Name: "host1", Address: "http://127.0.0.1:7401", State: api.HostUp, Enabled: true, Hypervisor: "qemu",
			Accelerator: "tcg", AccelReason: "godwit up: kvm probe: kernel did not reach 'Linux version' under kvm within 10s; using tcg",
			CPUs: 2, AllocatedCPUs: 3, MemoryMiB: 24064, AllocatedMemoryMiB: 512, DiskMiB: 102400, AllocatedDiskMiB: 2048,
			CPUModel: "AMD EPYC 7B13", VMs: 2, Version: "0.1.0-dev", QEMUVersion: "7.2.22",
			Pools: []api.Pool{{Name: "local", Kind: api.PoolLocal, Path: "/c/hosts/host1/local", FreeMiB: 100352},
				{Name: "shared", Kind: api.PoolShared, Path: "/c/shared", FreeMiB: 51200}},
			LastHeartbeat: now.Add(-time.Second), RegisteredAt: created},
		{Name: "host2", State: api.HostDown, Enabled: false, Accelerator: "kvm", QEMUVersion: "10.0.2", CPUs: 64, MemoryMiB: 262144,
			LastHeartbeat: now.Add(-3 * time.Minute)},
		{Name: "host3", State: api.HostUp, Enabled: true, Accelerator: "kvm", CPUs: 8, MemoryMiB: 16384},
	}
}

func testVMs() []api.VM {
	return []api.VM{
		{ID: "0c7b6a1e-0000-4000-8000-000000000001", Name: "web-1", Project: "default", Host: "host2", Image: "testguest",
			Flavor: api.Flavor{VCPUs: 2, MemoryMiB: 1536, DiskMiB: 10240}, Pool: "local", DesiredState: "running",
			State: "running", PID: 4242, Cmdline: "dirty_mb=32", OnPanic: api.OnPanicRestart, CreatedAt: created, UpdatedAt: created},
		{ID: "0c7b6a1e-0000-4000-8000-000000000002", Name: "db-1", Project: "team-a", Image: "testguest",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}, Pool: "shared", DesiredState: "running",
			State: "error", StateReason: "no host has room for 256M", CreatedAt: now.Add(-50 * time.Hour)},
	}
}

// testMigration is a live migration the auto policy made converge by
// throttling (post-copy not permitted under TCG), then by raising the
// throttle once.
func testMigration() api.Migration {
	at := func(ms int) time.Time { return created.Add(time.Duration(ms) * time.Millisecond) }
	return api.Migration{ID: "5e1f0000-0000-4000-8000-000000000009", VM: "web-1", VMID: testVMs()[0].ID, Kind: api.KindLive,
		State: api.MigCompleted, Source: "host1", Destination: "host2", Strategy: "shared-storage/pre-copy+auto-converge",
		BandwidthMBPerS: 125, Policy: api.PolicyAuto,
		Convergence: &api.Convergence{Policy: api.PolicyAuto, DirtyRate: 201326592, DirtyRateSource: "page-sampling 2.1s before the move",
			Bandwidth: 125e6, Prediction: "dirty 201 MB/s against 125 MB/s: pre-copy does not converge (still 30 passes on)",
			PredictedMS: 9210, Strategy: "auto-converge", Throttle: 97},
		Progress: api.MigrationProgress{MemoryTotal: 1 << 30, MemoryTransferred: 1590000000, MemoryZero: 780000000, Pass: 6,
			DowntimeMS: 41, TotalTimeMS: 10480},
		Phases: []api.Phase{{State: api.MigQueued, At: at(0)}, {State: api.MigScheduling, At: at(0)}, {State: api.MigPreparing, At: at(4)},
			{State: api.MigTransferring, At: at(380)}, {State: api.MigSwitchingOver, At: at(10900)}, {State: api.MigFinishing, At: at(10950)},
			{State: api.MigCompleted, At: at(11020)}},
		Decisions: []api.Decision{
			{At: at(381), Action: "auto-converge", Reason: "dirty 201 MB/s against 125 MB/s: pre-copy does not converge (still 30 passes on); post-copy not allowed: throttle the vCPUs to 91 %"},
			{At: at(6200), Action: "throttle", Reason: "pass 4 starts with 250 MB left, dirty 45 MB/s against 125 MB/s: pre-copy converges in 4 passes, 3.12s (0.4× the bound); throttle the vCPUs to 97 %"},
		},
		CreatedAt: created, FinishedAt: at(11020)}
}

func TestOutput(t *testing.T) {
	for _, tt := range []struct {
		name  string
		write func(a *app) error
	}{
		{"host-list", func(a *app) error { return writeHosts(a, testHosts(), now) }},
		{"host-show", func(a *app) error { return writeHost(a, testHosts()[0], now) }},
		{"host-list-incompatible", func(a *app) error {
			hs := testHosts()
			hs[2].State, hs[2].Version = api.HostIncompatible, "0.3.0"
			hs[2].StateReason = "agent 0.3.0 is too new for controller 0.1.0-dev (minor versions at most 1 apart): the controller is older: upgrade it to 0.2 or 0.3"
			return writeHosts(a, hs, now)
		}},
		{"vm-list", func(a *app) error { return writeVMs(a, testVMs(), now) }},
		{"vm-show", func(a *app) error { return a.printVM(testVMs()[0]) }},
		{"vm-show-error", func(a *app) error { return a.printVM(testVMs()[1]) }},
		{"vm-show-crashed", func(a *app) error {
			v := testVMs()[0]
			v.OnPanic, v.State = api.OnPanicPause, api.VMCrashed
			v.StateReason = "guest panicked (pvpanic): sysrq triggered crash; held paused by its on-panic policy (pause): read its console, then reboot or stop it"
			v.LastPanic = &api.GuestPanic{At: now.Add(-2 * time.Second), Reason: "guest panicked (pvpanic): sysrq triggered crash", Host: "host2", Count: 3, HostCount: 1}
			return a.printVM(v)
		}},
		{"migration-show", func(a *app) error { return writeMigration(a.out, testMigration()) }},
		{"migration-show-panic", func(a *app) error {
			m := testMigration()
			m.GuestPanic = &api.GuestPanic{At: m.FinishedAt.Add(4 * time.Second), Reason: "guest panicked (pvpanic): Fatal exception", Host: "host2"}
			return writeMigration(a.out, m)
		}},
		{"status", func(a *app) error {
			m := testMigration()
			m.State, m.FinishedAt = api.MigTransferring, time.Time{}
			m.Progress = api.MigrationProgress{MemoryTotal: 1 << 30, MemoryRemaining: 1 << 28}
			return a.writeStatus(clusterStatus{Hosts: testHosts(), VMsByState: map[string]int{"running": 3, "stopped": 1},
				Intents: []api.Intent{drainPlan()}, Migrations: []api.Migration{m}}, now)
		}},
		{"status-member", func(a *app) error {
			return a.writeStatus(clusterStatus{VMsByState: map[string]int{"running": 1}}, now)
		}},
		{"image-list", func(a *app) error {
			return writeImages(a, []api.Image{
				{Name: "testguest", Kind: "kernel", Files: []api.ImageFile{{Role: api.RoleKernel, Size: 8 << 20}, {Role: api.RoleInitrd, Size: 3<<20 + 1}}, CreatedAt: created},
				{Name: "debian", Kind: "disk", Files: []api.ImageFile{{Role: api.RoleDisk, Size: 2 << 30}}, CreatedAt: now.Add(-time.Hour)},
			}, now)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.write(&app{out: &out, output: "table"}); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, out.String())
		})
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 59 * time.Second: "59s", 90 * time.Second: "1m", 3 * time.Hour: "3h",
		47 * time.Hour: "47h", 49 * time.Hour: "2d",
	} {
		if got := age(now.Add(-d), now); got != want {
			t.Errorf("age(%s) = %q, want %q", d, got, want)
		}
	}
	if age(time.Time{}, now) != "-" {
		t.Error("the zero time has an age")
	}
}

// -o yaml is -o json's objects in YAML: the same keys and values.
func TestYAMLOutput(t *testing.T) {
	srv := newFakeController(t)
	for _, args := range [][]string{{"vm", "list"}, {"vm", "show", "web-1"}, {"host", "list"}, {"status"}} {
		j := mustRun(t, srv.Server, append(args, "-o", "json")...)
		y := mustRun(t, srv.Server, append(args, "-o", "yaml")...)
		back, err := yaml.YAMLToJSON([]byte(y))
		if err != nil {
			t.Fatalf("%v -o yaml is not YAML: %v\n%s", args, err, y)
		}
		var want, got any
		if err := json.Unmarshal([]byte(j), &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(back, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%v: -o yaml differs from -o json:\n%s\n%s", args, y, j)
		}
	}
}

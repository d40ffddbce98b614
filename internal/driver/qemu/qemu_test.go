package qemu

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/drivertest"
	"github.com/godwit/godwit/internal/testguest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestCommandLineGolden(t *testing.T) {
	l := launch{
		Spec: driver.VMSpec{ID: "0c7b6a1e-0000-4000-8000-000000000001", Name: "web-1", VCPUs: 2, MaxVCPUs: 4, MemoryMiB: 256,
			Kernel: "/img/vmlinuz", Initrd: "/img/initrd", Cmdline: "console=ttyS0 dirty_mb=16",
			Disk: &driver.Disk{Path: "/pool/a,b.qcow2", SizeMiB: 64}},
		Accel: "tcg", Machine: "pc-q35-7.2", CPUModel: defaultCPU("tcg"),
		QMP: "/state/qmp.sock", Console: "/state/console.log", PIDFile: "/state/qemu.pid",
	}
	got := strings.Join(l.args(), "\n") + "\n"
	path := filepath.Join("testdata", "cmdline.golden")
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("command line changed (run with -update if intended):\n%s", got)
	}
	if defaultCPU("kvm") != "host,arch-capabilities=off" {
		t.Errorf("kvm default cpu = %s", defaultCPU("kvm"))
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := vmState{Version: stateVersion, Launch: launch{Spec: driver.VMSpec{ID: "x", Name: "x", VCPUs: 1, MemoryMiB: 128}}, PID: 42,
		StartedAt: time.Now().UTC().Truncate(time.Microsecond), StopRequested: true}
	if err := writeState(dir, st); err != nil {
		t.Fatal(err)
	}
	got, err := readState(dir)
	if err != nil || got.PID != 42 || !got.StartedAt.Equal(st.StartedAt) || !got.StopRequested {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	st.Version = 99
	writeState(dir, st)
	if _, err := readState(dir); err == nil {
		t.Error("a state file of an unknown version was accepted")
	}
}

// The driver conformance suite on real QEMU (TCG: Debian's kernel does not
// boot under this machine's nested KVM).
func TestConformanceQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots real guests")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make test installs it)")
	}
	g := testguest.ForTest(t)
	drivertest.Run(t, drivertest.Harness{
		New: func(t *testing.T, dir string) driver.Driver {
			d, err := New(Config{StateDir: dir, Accel: driver.AccelTCG, StopTimeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Guest:       func(t *testing.T) (string, string, string) { return g.Kernel, g.Initrd, g.Cmdline },
		BootTimeout: 90 * time.Second,
	})
}

// Live migration between two QEMU drivers (two hosts) on shared storage.
func TestLiveMigrationQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots real guests")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make test installs it)")
	}
	g := testguest.ForTest(t)
	drivertest.RunLiveMigration(t, drivertest.Harness{
		New: func(t *testing.T, dir string) driver.Driver {
			d, err := New(Config{StateDir: dir, Accel: driver.AccelTCG})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Guest:       func(t *testing.T) (string, string, string) { return g.Kernel, g.Initrd, g.Cmdline },
		BootTimeout: 90 * time.Second,
	})
}

package qemu

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/drivertest"
	"github.com/godwit/godwit/internal/testguest"
)

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
	killLeftovers(t, filepath.Dir(t.TempDir())) // the suite's dirs share this parent
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
	killLeftovers(t, filepath.Dir(t.TempDir()))
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

// Online and offline resize on real QEMU, checked from inside the guest,
// and a live migration of the hot-plugged VM.
func TestResizeQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots real guests")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make test installs it)")
	}
	g := testguest.ForTest(t)
	killLeftovers(t, filepath.Dir(t.TempDir()))
	drivertest.RunResize(t, drivertest.Harness{
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

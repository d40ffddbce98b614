package qemu

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/driver"
)

// The QEMU driver is registered, fences, and resolves the accelerator
// when it opens.
func TestRegistered(t *testing.T) {
	f, ok := driver.Fencing(driver.HypervisorQEMU)
	if !ok {
		t.Fatal("the qemu driver's factory is no driver.Fencer")
	}
	if ps, err := f.SharedDiskProcesses(t.TempDir()); err != nil || len(ps) != 0 {
		t.Errorf("empty state directory: %v, %v", ps, err)
	}
	ctx := context.Background()
	if _, err := driver.Open(ctx, driver.HypervisorQEMU, driver.Options{StateDir: t.TempDir(), Accel: "xen"}); err == nil || !strings.Contains(err.Error(), "unknown accelerator") {
		t.Errorf("a bad accelerator: %v", err)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed")
	}
	d, err := driver.Open(ctx, driver.HypervisorQEMU, driver.Options{StateDir: t.TempDir(), Accel: driver.AccelTCG, AccelReason: "set by the test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if c := d.Capabilities(); c.Hypervisor != driver.HypervisorQEMU || c.Accelerator != driver.AccelTCG || c.AccelReason != "set by the test" {
		t.Errorf("capabilities %+v", c)
	}
}

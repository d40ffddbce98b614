package fake_test

import (
	"context"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/fake"
)

// The agent opens the fake by name, its test knobs in driver-neutral
// Options: Faults as Extra, the QEMU version it claims.
func TestRegistered(t *testing.T) {
	ctx := context.Background()
	d, err := driver.Open(ctx, driver.HypervisorFake, driver.Options{StateDir: t.TempDir(), Accel: driver.AccelTCG,
		ClaimedQEMUVersion: "7.2.22", Extra: &fake.Faults{}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if c := d.Capabilities(); c.Hypervisor != driver.HypervisorFake || c.Accelerator != driver.AccelTCG || c.QEMUVersion != "7.2.22" {
		t.Errorf("capabilities %+v", c)
	}
	d2, err := driver.Open(ctx, driver.HypervisorFake, driver.Options{StateDir: t.TempDir(), Accel: "auto", Extra: (*fake.Faults)(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if c := d2.Capabilities(); c.Accelerator != "none" || c.QEMUVersion != fake.DefaultQEMUVersion {
		t.Errorf("defaults: capabilities %+v", c)
	}
	if _, err := driver.Open(ctx, driver.HypervisorFake, driver.Options{StateDir: t.TempDir(), Extra: "faults"}); err == nil || !strings.Contains(err.Error(), "*fake.Faults") {
		t.Errorf("an Extra of another type: %v", err)
	}
	if _, ok := driver.Fencing(driver.HypervisorFake); ok {
		t.Error("the fake, which has no processes, fences")
	}
}

package fake

import (
	"context"
	"fmt"

	"github.com/godwit/godwit/internal/driver"
)

func init() { driver.Register(driver.HypervisorFake, driver.FactoryFunc(open)) }

// open opens a fake driver for the registry. Options.Extra may be a
// *Faults (nil: none); Options.Accel kvm or tcg is the accelerator the
// host claims (anything else: none), ClaimedQEMUVersion its QEMU release.
// The fake has no processes, so its factory is no driver.Fencer.
func open(_ context.Context, o driver.Options) (driver.Driver, error) {
	var faults *Faults
	switch x := o.Extra.(type) {
	case nil:
	case *Faults:
		faults = x
	default:
		return nil, fmt.Errorf("fake driver: Extra must be a *fake.Faults, not %T", o.Extra)
	}
	acc := ""
	if o.Accel == driver.AccelKVM || o.Accel == driver.AccelTCG {
		acc = o.Accel
	}
	d, err := New(Config{StateDir: o.StateDir, Faults: faults, Logger: o.Logger, Accel: acc, QEMUVersion: o.ClaimedQEMUVersion})
	if err != nil {
		return nil, err
	}
	return d, nil
}

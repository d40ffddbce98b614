package qemu

import (
	"context"
	"log/slog"

	"github.com/godwit/godwit/internal/accel"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/hostinfo"
)

func init() { driver.Register(driver.HypervisorQEMU, factory{}) }

// factory opens the QEMU driver for the registry; it is a driver.Fencer
// too, since a host's QEMUs outlive its agent.
type factory struct{}

// Open resolves the accelerator, unless someone else did (an explicit kvm
// or tcg with a reason: godwit up probes once for all its hosts), and
// opens the driver. Options.Extra and ClaimedQEMUVersion are ignored.
func (factory) Open(ctx context.Context, o driver.Options) (driver.Driver, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	acc, reason := o.Accel, o.AccelReason
	if acc == "" {
		acc = "auto"
	}
	if acc == "auto" || reason == "" {
		var err error
		if acc, reason, err = accel.Resolve(ctx, acc, hostinfo.NewestKernel()); err != nil {
			return nil, err
		}
	}
	log.Info("accelerator chosen", "accel", acc, "reason", reason)
	d, err := New(Config{StateDir: o.StateDir, Accel: acc, AccelReason: reason, QEMUBinary: o.QEMUBinary, RunAs: o.QEMUUser,
		NoPostCopyPreempt: o.NoPostCopyPreempt, DirtySampleEvery: o.DirtySampleEvery, Logger: log})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// SharedDiskProcesses implements driver.Fencer with the package's
// SharedDiskProcesses.
func (factory) SharedDiskProcesses(stateDir string) ([]driver.Process, error) {
	ps, err := SharedDiskProcesses(stateDir)
	out := make([]driver.Process, len(ps))
	for i, p := range ps {
		out[i] = driver.Process{VMID: p.VMID, Name: p.Name, PID: p.PID, Kill: p.Kill}
	}
	return out, err
}

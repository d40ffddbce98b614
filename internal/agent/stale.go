package agent

import (
	"context"
	"errors"
	"slices"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
)

// removeStale removes the stale copies the controller named: VMs that
// were rebuilt on other hosts while this one was down. Each is stopped
// and forgotten; its disk goes too when it is local, never when it is on
// the shared pool, where the rebuilt VM uses it. They are reported as
// cleaned in the next heartbeats until one is delivered.
func (a *Agent) removeStale(ctx context.Context, remove []hostapi.StaleVM) {
	for _, vm := range remove {
		log := a.log.With("vm", vm.Name, "id", vm.ID)
		st, err := a.drv.Status(ctx, vm.ID)
		switch {
		case errors.Is(err, errs.ErrNotFound):
			// Already gone.
		case err != nil:
			log.Error("stale copy: read status", "err", err)
			continue
		case st.Spec.Disk != nil && st.Spec.Disk.Shared:
			rel, ok := a.drv.(driver.Releaser)
			if !ok {
				log.Error("stale copy on the shared pool: this driver cannot release a VM without deleting its disk; left in place")
				continue
			}
			if err := rel.Release(ctx, vm.ID); err != nil && !errors.Is(err, errs.ErrNotFound) {
				log.Error("stale copy: release", "err", err)
				continue
			}
			log.Warn("stale copy removed: the vm was rebuilt on another host while this one was down (shared disk kept)")
		default:
			if err := a.drv.Delete(ctx, vm.ID); err != nil && !errors.Is(err, errs.ErrNotFound) {
				log.Error("stale copy: delete", "err", err)
				continue
			}
			log.Warn("stale copy removed: the vm was rebuilt on another host while this one was down (local disk deleted)")
		}
		a.removeSeed(vm.ID)
		a.staleMu.Lock()
		if !slices.Contains(a.cleaned, vm) {
			a.cleaned = append(a.cleaned, vm)
		}
		a.staleMu.Unlock()
	}
}

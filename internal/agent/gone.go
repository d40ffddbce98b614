package agent

import (
	"context"
	"fmt"

	"github.com/godwit/godwit/internal/driver"
)

// processGone says why a VM's process cannot take part in a migration
// any more — it crashed, was killed or stopped — or "" while it runs (or
// when the VM is unknown: the caller's own call says so). Asking a dead
// QEMU over QMP would only wait for a socket that never comes back.
func (a *Agent) processGone(ctx context.Context, id string) string {
	st, err := a.drv.Status(ctx, id)
	if err != nil || st.State == driver.StateRunning || st.State == driver.StatePaused {
		return ""
	}
	return fmt.Sprintf("the vm's process on host %s is %s (it exited during the migration: crashed or killed); the vm is not running there", a.cfg.Name, st.State)
}

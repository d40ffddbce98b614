package service

import (
	"context"
	"log/slog"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
)

// arrival is a migration whose VM now runs (or, stopped, is defined) on
// its destination.
type arrival struct {
	kind     api.MigrationKind // names its failpoints
	id       string            // the migration
	vm       api.VM
	src, dst string
	rep      hostapi.VMReport // the destination's report of the VM
	// dropSrc removes the source's copy: releases it (a shared disk
	// stays), or deletes it with its local disk.
	dropSrc func(ctx context.Context, vmID string) error
	srcCopy string // the source's copy in words, e.g. "its paused copy"
	// figures records the move's final figures on the migration.
	figures func(*api.Migration)
}

// arrive is the tail both migration kinds share, from the moment the VM
// runs on the destination: the migration moves to finishing; the VM's
// record moves to the destination, before the migration ends (the
// destination's claim passes from the migration to the VM without a gap:
// hostsWithAllocations relies on that order); the source's copy is
// removed, a restarting source agent waited out (the removal is
// idempotent); the final figures are recorded and the migration completes.
// Nothing here undoes the move: a step that fails leaves the migration
// needing attention, saying what is where. It reports whether the
// migration completed.
func (c *Service) arrive(ctx context.Context, log *slog.Logger, a arrival) bool {
	if _, err := c.advance(ctx, a.id, api.MigFinishing, ""); err != nil {
		log.Error("record finishing", "err", err)
	}
	state, reason, pid := observed(a.rep)
	if _, err := c.store.UpdateVM(ctx, a.vm.Name, func(v *api.VM) error {
		v.Host, v.PID, v.State, v.StateReason = a.dst, pid, state, reason
		return nil
	}); err != nil {
		log.Error("record the vm on the destination", "err", err)
		c.advance(ctx, a.id, api.MigNeedsAttention, "the vm runs on "+a.dst+" but recording it there failed: "+err.Error()+
			"; "+a.srcCopy+" on "+a.src+" is kept and must not be started")
		return false
	}
	failpoint.Hit(string(a.kind) + "/before-source-cleanup")
	if err := c.whileUnavailable(ctx, func(ctx context.Context) error { return a.dropSrc(ctx, a.vm.ID) }); err != nil {
		log.Error("remove the source copy", "err", err)
		c.advance(ctx, a.id, api.MigNeedsAttention, "the vm runs on "+a.dst+" but "+a.srcCopy+" on "+a.src+" could not be removed: "+err.Error())
		return false
	}
	c.updateMigration(ctx, a.id, func(m *api.Migration) error { a.figures(m); return nil })
	if _, err := c.advance(ctx, a.id, api.MigCompleted, ""); err != nil {
		log.Error("record completion", "err", err)
	}
	return true
}

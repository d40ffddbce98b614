package service

import (
	"context"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/store"
)

// Guest panics reach the controller in heartbeats: each host reports the
// last panic of each VM it runs, with its own count of them (since the VM
// was defined there, so a migration's destination starts from zero). The
// VM record keeps the last one with the count of all (VM.LastPanic), and
// a migration during which, or within api.GuestPanicWindow after which,
// the guest panicked keeps the first such panic too.

// newPanic says whether p, reported by host, is a panic the VM record
// does not hold yet. A VM's host reports only panics it saw itself (a
// destination's driver state starts empty), so one reported by another
// host than the last recorded one is new, whatever the two hosts' clocks
// say; from the same host, a later one is.
func newPanic(last *api.GuestPanic, host string, p *hostapi.Panic) bool {
	return p != nil && (last == nil || last.Host != host || p.At.After(last.At))
}

// recordPanic records p, reported by host, as v's last panic, unless v
// already has it (v fresh from the store, in its update). moved is when
// the VM's last migration began (zero: never migrated).
func recordPanic(v *api.VM, host string, p *hostapi.Panic, moved time.Time) bool {
	last := v.LastPanic
	if !newPanic(last, host, p) {
		return false
	}
	// The panics beyond those already counted: all the host reports when
	// it is a new one (or its count restarted: the VM was defined there
	// afresh), else those beyond its last report; at least this one.
	n := p.Count
	total := 0
	if last != nil {
		total = last.Count
		if last.Host == host && p.Count > last.HostCount {
			n = p.Count - last.HostCount
		}
	}
	n = max(n, 1)
	// A guest that arrived held at a panic brought the source's along:
	// counted already if the source reported it during the move.
	if p.Arrived && p.Count <= 1 && last != nil && last.Host != host && !moved.IsZero() && !last.At.Before(moved) {
		n = 0
	}
	v.LastPanic = &api.GuestPanic{At: p.At, Reason: p.Reason, Host: host, Count: total + n, HostCount: p.Count}
	return true
}

// migrationStart is when the VM's last migration began; zero if none.
func (c *Service) migrationStart(ctx context.Context, vm api.VM) time.Time {
	ms, err := c.store.Migrations(ctx, store.MigrationFilter{VM: vm.Name})
	if err != nil {
		return time.Time{} // then an arrived panic counts: rather twice than never
	}
	for _, m := range ms { // newest first
		if m.VMID == vm.ID {
			return m.CreatedAt
		}
	}
	return time.Time{}
}

// panicOnMigration records a panic on the VM's migration it happened
// during, or within api.GuestPanicWindow after it completed: the first
// such panic, which says the most about the move. Times are the host's
// (the panic) and the controller's (the migration), so the hosts' clocks
// are taken to be synchronised to within the window.
func (c *Service) panicOnMigration(ctx context.Context, vm api.VM, host string, p *hostapi.Panic) {
	ms, err := c.store.Migrations(ctx, store.MigrationFilter{VM: vm.Name})
	if err != nil {
		c.log.Error("find the migration a guest panic followed", "vm", vm.Name, "host", host, "err", err)
		return
	}
	for _, m := range ms { // newest first
		if m.VMID != vm.ID || m.CreatedAt.After(p.At) {
			continue
		}
		end := m.FinishedAt
		if m.State == api.MigCompleted {
			end = end.Add(api.GuestPanicWindow)
		}
		if m.State.Final() && p.At.After(end) {
			return // the last migration before the panic is long over
		}
		if _, err := c.updateMigration(ctx, m.ID, func(mm *api.Migration) error {
			if mm.GuestPanic == nil {
				mm.GuestPanic = &api.GuestPanic{At: p.At, Reason: p.Reason, Host: host}
			}
			return nil
		}); err != nil {
			c.log.Error("record a guest panic on its migration", "vm", vm.Name, "host", host, "op", m.ID, "err", err)
			return
		}
		c.log.Warn("guest panicked during or just after its migration", "vm", vm.Name, "host", host, "op", m.ID,
			"from", m.Source, "to", m.Destination, "reason", p.Reason)
		return
	}
}

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/store"
)

// Recovery of migrations a previous controller left running. Nothing is
// decided from the record alone: the VM's two hosts are asked what really
// exists — which copy runs, whether the source is still sending — and the
// migration is driven to the end those facts allow:
//
//	live, the source still sending         cancel it, remove the destination's copy: rolled back
//	live, the source running, not sending  remove the destination's copy: rolled back
//	live, the source finished sending      resume the guest on the destination, move the record,
//	                                       remove the source's copy: completed
//	live, only the destination has it      move the record: completed
//	live, the source finished sending and  resume the source's copy, if the move had
//	  the destination has no copy          found the destination never ran the guest
//	                                       (switchover.go): rolled back
//	cold, the destination runs it (or has  move the record, remove the source's copy: completed
//	  it defined, for a stopped VM) and the
//	  switch-over had begun
//	cold, otherwise                        remove the destination's copy, start the source's
//	                                       again if it ran: rolled back
//
// Anything else (no copy anywhere, two running copies) ends in
// error-needs-attention with what was found. The VM stays locked until its
// migration ends, so no intent or user starts another operation on it;
// while a host does not answer, recovery waits and says so in the record.

// recoveryRetry is how long recovery waits before asking an unreachable
// agent again.
const recoveryRetry = 2 * time.Second

// lockInterrupted locks the VM of every migration a previous controller
// left running, before the API serves: nothing may start on them until
// recovery has decided. It returns the migrations to recover.
func (c *Service) lockInterrupted(ctx context.Context) ([]api.Migration, error) {
	ms, err := c.store.Migrations(ctx, store.MigrationFilter{Active: true})
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		unlock, err := c.lockVM(m.VM, "recovery of migration "+m.ID)
		if err != nil {
			// A second unfinished migration of one VM (which the busy
			// lock should have prevented): recover it all the same.
			c.log.Error("vm has more than one unfinished migration", "vm", m.VM, "op", m.ID)
			unlock = func() {}
		}
		c.recovering = append(c.recovering, recovery{m: m, unlock: unlock})
		c.log.Warn("migration interrupted by a controller restart; recovering", "op", m.ID, "vm", m.VM, "state", m.State)
	}
	return ms, nil
}

type recovery struct {
	m      api.Migration
	unlock func()
}

// recoverMigrations recovers every interrupted migration in the
// background, until each has ended or ctx is done.
func (c *Service) recoverMigrations(ctx context.Context) {
	for _, r := range c.recovering {
		go func(r recovery) {
			defer r.unlock()
			c.recoverMigration(ctx, r.m)
		}(r)
	}
	c.recovering = nil
}

// facts is what one host says of the VM.
type facts struct {
	has   bool
	state string // driver state: running, paused, stopped, crashed
	mig   string // outgoing migration status, on the source
	sent  int64  // memory bytes it sent: an incoming migration's status shows none
}

func (f facts) String() string {
	if !f.has {
		return "no copy"
	}
	if f.mig != "" && f.mig != driverMigrationNone {
		return f.state + " (outgoing migration " + f.mig + ")"
	}
	return f.state
}

const driverMigrationNone = "none"

// restartedPrefix starts the reason of every migration recovery ended.
const restartedPrefix = "the controller restarted during "

// RolledBackByRestart reports whether a migration was rolled back because
// the controller restarted under it (recovery), not for the VM's sake: an
// intent tries it again.
func RolledBackByRestart(m api.Migration) bool {
	return m.State == api.MigRolledBack && strings.HasPrefix(m.Reason, restartedPrefix)
}

// ask reads what a host has of a VM; an error means the host did not
// answer (a missing VM is a fact, not an error).
func (c *Service) ask(ctx context.Context, host, vmID string, source bool) (facts, error) {
	h, err := c.store.Host(ctx, host)
	if err != nil {
		return facts{}, err
	}
	ag := c.agent(h)
	rep, err := ag.VM(ctx, vmID)
	if errors.Is(err, errs.ErrNotFound) {
		return facts{}, nil
	}
	if err != nil {
		return facts{}, err
	}
	f := facts{has: true, state: rep.State}
	if source && (rep.State == "running" || rep.State == "paused") { // a stopped VM sends nothing (and has no QMP to ask)
		st, err := ag.MigrationStatus(ctx, vmID)
		if err != nil && !errors.Is(err, errs.ErrNotFound) {
			return facts{}, err
		}
		f.mig, f.sent = st.Status, st.MemoryTransferred
	}
	return f, nil
}

// recoverMigration drives one interrupted migration to its end.
func (c *Service) recoverMigration(ctx context.Context, m api.Migration) {
	log := c.log.With("op", m.ID, "vm", m.VM, "from", m.Source, "to", m.Destination)
	waitingSaid := false
	for {
		src, serr := c.ask(ctx, m.Source, m.VMID, m.Kind == api.KindLive)
		dst, derr := c.ask(ctx, m.Destination, m.VMID, false)
		if serr == nil && derr == nil {
			c.decide(ctx, log, m, src, dst)
			return
		}
		if !waitingSaid {
			why := errors.Join(serr, derr).Error()
			c.decision(ctx, m.ID, "recovery waits", "a host does not answer: "+why)
			log.Warn("recovery waits for the hosts to answer", "err", why)
			waitingSaid = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(recoveryRetry):
		}
	}
}

// handedOver reports whether a live move's source sent everything: its
// guest paused there, unless a hand-back resumed it (decisionResumeSource).
func handedOver(src facts) bool {
	return src.has && src.mig == string(driver.MigrationCompleted) && src.sent > 0
}

// decide ends an interrupted migration from what its hosts said.
func (c *Service) decide(ctx context.Context, log *slog.Logger, m api.Migration, src, dst facts) {
	seen := fmt.Sprintf("source %s: %s; destination %s: %s", m.Source, src, m.Destination, dst)
	prefix := restartedPrefix + string(m.State) + " (" + seen + "); "
	vm, err := c.store.VM(ctx, m.VM)
	if err != nil || vm.ID != m.VMID {
		c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+"the vm record is gone")
		return
	}
	local := vm.Pool == api.PoolLocal && vm.Flavor.DiskMiB > 0
	srcA, dstA := c.agentOf(ctx, m.Source), c.agentOf(ctx, m.Destination)
	dropDst, dropSrc := dstA.Release, srcA.Release
	if local {
		dropDst, dropSrc = dstA.DeleteVM, srcA.DeleteVM
	}
	running := func(f facts) bool { return f.has && (f.state == "running" || f.state == "paused") }
	switched := m.State == api.MigSwitchingOver || m.State == api.MigFinishing

	var forward bool
	var why string
	switch {
	case m.Kind == api.KindLive && src.has && src.mig == "active":
		why = "the source was still sending: cancelled"
		handed, err := c.cancelOnSource(ctx, srcA, m.VMID)
		if err == nil && handed {
			why = "the source completed as it was cancelled: handed back to it"
			err = c.handBack(ctx, m.ID, srcA, dropDst, m.VMID, prefix+"the source's migration completed as it was cancelled")
		}
		if err != nil {
			c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+"cancelling on the source failed: "+err.Error())
			return
		}
	case m.Kind == api.KindLive && handedOver(src) && dst.has && !decided(m, decisionResumeSource):
		// (QEMU reports a VM that itself arrived by migration as
		// "completed" too, with nothing sent: that is not this one.)
		forward, why = true, "the source had sent everything: the guest resumes on the destination"
		rep, err := dstA.SwitchOver(ctx, m.VMID)
		if errors.Is(err, errs.ErrConflict) { // not waiting: it resumed before the restart
			rep, err = dstA.VM(ctx, m.VMID)
		}
		if err != nil {
			c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+"resuming on the destination failed: "+err.Error()+"; the paused copy on "+m.Source+" is kept")
			return
		}
		dst.state = rep.State
	case m.Kind == api.KindLive && handedOver(src):
		// The source's guest is paused and the destination has no copy:
		// the move had removed it, having found the guest never ran
		// there, or else nobody knows where the guest last ran.
		if !decided(m, decisionResumeSource) {
			c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+"the source sent everything and its copy is paused, but the destination has no copy; "+
				"resume the copy on "+m.Source+" only if the guest never ran on "+m.Destination)
			return
		}
		// A hand-back under way when the controller stopped: the
		// destination's copy goes first, then the source resumes.
		if err := dropDst(ctx, m.VMID); err != nil && !errors.Is(err, errs.ErrNotFound) {
			c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+"the move was being handed back to the source, but removing the destination's copy failed: "+err.Error()+"; the paused copy on "+m.Source+" is the vm")
			return
		}
		if _, err := srcA.Resume(ctx, m.VMID); err != nil {
			c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+"the destination never ran the guest and its copy is gone, but resuming the paused copy on "+m.Source+" failed: "+err.Error()+"; that copy is the vm")
			return
		}
		why = "the destination never ran the guest and its copy is gone: resumed on the source"
	case m.Kind == api.KindLive && !src.has && running(dst):
		forward, why = true, "only the destination has the vm"
	case m.Kind == api.KindLive && running(src):
		why = "the source runs the vm"
	case m.Kind == api.KindCold && switched && dst.has && (running(dst) || vm.DesiredState == api.VMStopped):
		forward, why = true, "the destination has the vm"
	case m.Kind == api.KindCold && src.has:
		why = "the source still has the vm"
	default:
		c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+"no safe way to finish or roll back: check both hosts")
		return
	}
	if forward {
		if running(src) && m.Kind == api.KindCold {
			c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+"both hosts run the vm: stop one by hand")
			return
		}
		state, reason, pid := api.VMRunning, "", 0
		if rep, err := dstA.VM(ctx, m.VMID); err == nil {
			state, reason, pid = observed(rep)
		}
		if _, err := c.store.UpdateVM(ctx, vm.Name, func(v *api.VM) error {
			v.Host, v.State, v.StateReason, v.PID = m.Destination, state, reason, pid
			return nil
		}); err != nil {
			c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+"recording the vm on the destination failed: "+err.Error())
			return
		}
		if src.has {
			if err := dropSrc(ctx, m.VMID); err != nil && !errors.Is(err, errs.ErrNotFound) {
				c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+why+"; removing the source's copy failed: "+err.Error())
				return
			}
		}
		log.Info("interrupted migration recovered forward", "why", why)
		c.endRecovered(ctx, m, api.MigCompleted, prefix+why)
		return
	}
	// Roll back: the destination's copy goes; the source's runs. Asked
	// even when the destination reports no copy: a disk import may be
	// under way there, which this stops and removes.
	{
		if err := dropDst(ctx, m.VMID); err != nil && !errors.Is(err, errs.ErrNotFound) {
			c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+why+"; removing the destination's copy failed: "+err.Error())
			return
		}
	}
	if m.Kind == api.KindCold && local && src.has {
		// The interrupted disk transfer's grant, which this controller's
		// predecessor held the only other copy of: a best effort, since it
		// lapses by itself (and a start on the source drops it too).
		_ = srcA.RevokeDiskTransfer(ctx, m.VMID)
	}
	if m.Kind == api.KindCold && vm.DesiredState == api.VMRunning && !running(src) {
		if _, err := srcA.Action(ctx, m.VMID, "start"); err != nil {
			c.endRecovered(ctx, m, api.MigNeedsAttention, prefix+why+"; starting it again on the source failed: "+err.Error())
			return
		}
		why += "; started again on the source"
	}
	if rep, err := srcA.VM(ctx, m.VMID); err == nil {
		c.applyReport(ctx, vm.Name, rep)
	}
	log.Info("interrupted migration rolled back", "why", why)
	c.endRecovered(ctx, m, api.MigRolledBack, prefix+why)
}

// agentOf is the agent of a host by name (its address from the store).
func (c *Service) agentOf(ctx context.Context, host string) *hostapi.Agent {
	h, _ := c.store.Host(ctx, host)
	return c.agent(h)
}

// endRecovered records how recovery ended a migration, walking the state
// table forward for a completion.
func (c *Service) endRecovered(ctx context.Context, m api.Migration, state api.MigrationState, reason string) {
	c.decision(ctx, m.ID, "recovered: "+string(state), reason)
	if state == api.MigCompleted {
		for _, s := range []api.MigrationState{api.MigSwitchingOver, api.MigFinishing} {
			if cur, err := c.store.Migration(ctx, m.ID); err == nil && checkTransition(cur.State, s) == nil {
				c.advance(ctx, m.ID, s, "")
			}
		}
	}
	if _, err := c.advance(ctx, m.ID, state, reason); err != nil {
		c.log.Error("record recovered migration", "op", m.ID, "err", err)
	}
}

// decided reports whether a migration's record holds a decision.
func decided(m api.Migration, action string) bool {
	for _, d := range m.Decisions {
		if d.Action == action {
			return true
		}
	}
	return false
}

// decision appends a decision to a migration's record.
func (c *Service) decision(ctx context.Context, id, action, reason string) {
	c.updateMigration(context.WithoutCancel(ctx), id, func(m *api.Migration) error {
		m.Decisions = append(m.Decisions, api.Decision{At: time.Now().UTC(), Action: action, Reason: reason})
		return nil
	})
}

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
)

// pollInterval is how often a running migration's progress is read.
const pollInterval = 250 * time.Millisecond

// linkPollInterval is how often it is read while another move waits for
// the source's link.
const linkPollInterval = 50 * time.Millisecond

// rollback collects undo steps as a multi-step operation goes; on failure
// they run in reverse. Each step is idempotent.
type rollback struct {
	steps []func(context.Context) error
	names []string
}

func (r *rollback) add(name string, f func(context.Context) error) {
	r.steps, r.names = append(r.steps, f), append(r.names, name)
}

// run undoes what was done, on a fresh context (the operation's may be
// what was cancelled), waiting up to outage for an unreachable agent, and
// reports the steps that failed.
func (r *rollback) run(ctx context.Context, outage time.Duration, log *slog.Logger) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var errs []error
	for i := len(r.steps) - 1; i >= 0; i-- {
		if err := waitUnavailable(uctx, outage, r.steps[i]); err != nil {
			log.Error("rollback step failed", "step", r.names[i], "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", r.names[i], err))
		}
	}
	return errors.Join(errs...)
}

// runLive is a live migration, start to end. What happens, in order:
//
//	preparing       the destination defines the VM and waits for it (QEMU -incoming)
//	waiting-for-link  (a drain's move, only while another transfer leaves the
//	                source) prepared, it waits for the source's link (link.go)
//	transferring    the source sends memory (pre-copy) while the guest runs
//	switching-over  the source pauses for the last pages; the destination resumes the guest
//	finishing       the VM record moves to the destination; the source releases its process
//
// A local disk moves with the memory: the destination exports an empty
// disk over NBD, the source mirrors into it, memory moves once the mirror
// is in sync, and both switch over together (block-copy strategy).
//
// Each state is persisted before its step. On failure or abort before the
// switch-over, the source cancels, the destination's copy is removed, and
// the VM runs on the source as before; after it, the VM runs on the
// destination and the source's copy is removed. If the destination fails
// to resume the guest, where the guest may run is asked, not assumed
// (switchover.go).
//
// transfers, when positive, is how many transfers may leave the source at
// once: the link is taken after the destination is prepared and given up
// the moment the source has sent everything, before the switch-over.
func (c *Service) runLive(ctx context.Context, m api.Migration, vm api.VM, src, dst api.Host, transfers int) {
	log := c.log.With("vm", vm.Name, "op", m.ID, "from", src.Name, "to", dst.Name)
	srcA, dstA := c.agent(src), c.agent(dst)
	var rb rollback
	fail := c.failure(ctx, m.ID, log, &rb)
	im, err := c.store.Image(ctx, vm.Image)
	if err != nil {
		fail(fmt.Errorf("image %s: %w", vm.Image, err))
		return
	}

	failpoint.Hit("live/after-scheduling")
	if _, err := c.advance(ctx, m.ID, api.MigPreparing, ""); err != nil {
		fail(err)
		return
	}
	// A local disk is copied (block migration): the destination's copy is
	// deleted on failure, the source's after success. A shared disk stays.
	local := vm.Pool == api.PoolLocal && vm.Flavor.DiskMiB > 0
	dropDst, dropSrc := dstA.Release, srcA.Release
	if local {
		dropDst, dropSrc = dstA.DeleteVM, srcA.DeleteVM
	}
	rb.add("remove the destination's copy", func(ctx context.Context) error { return gone(dropDst(ctx, vm.ID)) })
	spec, err := c.agentSpec(ctx, vm, im, false) // the source's sizes and ceilings: the same devices on both ends
	if err != nil {
		fail(err)
		return
	}
	spec.PostCopy = m.PostCopy
	spec.Encrypt = m.Encrypted // as recorded when the move began, whatever the setting says now
	in, err := dstA.PrepareIncoming(ctx, spec)
	if err != nil {
		fail(fmt.Errorf("prepare %s: %w", dst.Name, err))
		return
	}
	// The source sends the guest's memory and disk wherever it is told:
	// only to the destination's registered address, and only over tcp.
	if err := hostapi.TargetOnHost(ctx, in, dst.Address); err != nil {
		fail(fmt.Errorf("prepare %s: %w", dst.Name, err))
		return
	}

	failpoint.Hit("live/after-prepare")
	if transfers > 0 {
		if c.link.busy(src.Name, transfers) {
			if _, err := c.advance(ctx, m.ID, api.MigWaitingLink, ""); err != nil {
				fail(err)
				return
			}
			failpoint.Hit("live/waiting-for-link") // prepared, another move sends
		}
		if err := c.link.acquire(ctx, src.Name, transfers); err != nil {
			fail(fmt.Errorf("wait for %s's link: %w", src.Name, err))
			return
		}
	}
	var linkOnce sync.Once
	freeLink := func() {
		if transfers > 0 {
			linkOnce.Do(func() { c.link.release(src.Name) })
		}
	}
	defer freeLink()
	if _, err := c.advance(ctx, m.ID, api.MigTransferring, ""); err != nil {
		freeLink()
		fail(err)
		return
	}
	rb.add("cancel on the source", func(ctx context.Context) error {
		handedOver, err := c.cancelOnSource(ctx, srcA, vm.ID)
		if err != nil || !handedOver {
			return err
		}
		return c.handBack(ctx, m.ID, srcA, dropDst, vm.ID, "the migration completed as it was cancelled")
	})
	if err := srcA.MigrateOut(ctx, vm.ID, hostapi.MigrateOut{URI: in.URI, NBD: in.NBD, PostCopyPreempt: in.PostCopyPreempt, MaxDowntimeMS: m.MaxDowntimeMS,
		BandwidthMBPerS: m.BandwidthMBPerS, PostCopy: m.PostCopy, AutoConverge: m.AutoConverge, Policy: m.Policy,
		Encrypt: m.Encrypted, Destination: dst.Name}); err != nil {
		freeLink()
		fail(fmt.Errorf("start on %s: %w", src.Name, err))
		return
	}
	failpoint.Hit("live/mid-transfer")
	final, err := c.watchTransfer(ctx, m.ID, srcA, vm.ID, src.Name)
	var split *postCopySplit
	if errors.As(err, &split) {
		// Past the switch to post-copy nothing can be undone: the guest's
		// newest state is on the destination, part of its memory still on
		// the source. Both copies are kept as they are.
		freeLink()
		log.Error("migration failed after the switch to post-copy; both copies kept", "err", err)
		c.advance(context.WithoutCancel(ctx), m.ID, api.MigNeedsAttention, split.reason(src.Name, dst.Name))
		return
	}
	if err != nil {
		freeLink() // the source stopped sending; its rollback needs no link
		fail(err)
		return
	}

	// From here the source's guest is paused with nothing left to send:
	// no undo step applies blindly. Should the destination fail to resume
	// it, switchOverFailed asks whether it ran there.
	rb = rollback{}
	if _, err := c.advance(ctx, m.ID, api.MigSwitchingOver, ""); err != nil {
		log.Error("record switch-over", "err", err)
	}
	freeLink() // the source sent everything: the next move sends now
	fctx := context.WithoutCancel(ctx)
	failpoint.Hit("live/switch-over")
	var rep hostapi.VMReport
	err = c.whileUnavailable(fctx, func(ctx context.Context) (err error) { rep, err = dstA.SwitchOver(ctx, vm.ID); return err })
	if err != nil {
		var ran bool
		rep, ran = c.switchOverFailed(fctx, log, liveMove{id: m.ID, vm: vm, src: src.Name, dst: dst.Name, srcA: srcA, dstA: dstA,
			dropDst: dropDst, postCopy: final.Strategy.PostCopy()}, err)
		if !ran {
			return
		}
	}
	done := c.arrive(fctx, log, arrival{kind: api.KindLive, id: m.ID, vm: vm, src: src.Name, dst: dst.Name, rep: rep,
		dropSrc: dropSrc, srcCopy: "its paused copy", figures: func(mm *api.Migration) {
			mm.Strategy = final.Strategy
			mm.Progress.DowntimeMS, mm.Progress.TotalTimeMS = final.DowntimeMS, final.TotalTimeMS
			mm.Progress.MemoryRemaining, mm.Progress.ETAMS = 0, 0
		}})
	if done {
		log.Info("live migration completed", "downtime_ms", final.DowntimeMS, "total_ms", final.TotalTimeMS)
	}
}

// failure returns a migration's failure path: undo what was done, then
// record how it ended — rolled back, cancelled (ctx was, by an abort), or
// needing attention when the undo itself failed.
func (c *Service) failure(ctx context.Context, id string, log *slog.Logger, rb *rollback) func(error) {
	return func(err error) {
		state := api.MigRolledBack
		if ctx.Err() != nil {
			state, err = api.MigCancelled, errors.New("aborted on request")
		}
		if rerr := rb.run(ctx, c.cfg.AgentOutage, log); rerr != nil {
			state, err = api.MigNeedsAttention, fmt.Errorf("%v; rollback failed: %v", err, rerr)
		}
		log.Warn("migration failed", "state", state, "err", err)
		if _, uerr := c.advance(ctx, id, state, err.Error()); uerr != nil {
			log.Error("record migration failure", "err", uerr)
		}
	}
}

// watchTransfer polls the source until the migration completes, recording
// progress; it returns the final status, or an error when the migration
// failed, was cancelled, or ctx was (abort).
//
// While another move waits for the source's link it polls more often, so
// the link passes on soon after the transfer ends.
func (c *Service) watchTransfer(ctx context.Context, id string, srcA *hostapi.Agent, vmID, source string) (hostapi.MigrationStatus, error) {
	var stall stallWatch
	// Spans without progress go to the metrics as they end, and the one
	// the transfer ends in (a cut link's) when it returns.
	defer func() { c.cfg.Metrics.MigrationStalled(api.KindLive, stall.open(time.Now())) }()
	var lastRead time.Time // zero: the first read is at once
	for {
		wait := pollInterval
		if c.link.waiting(source) {
			wait = linkPollInterval
		}
		// The source holds each read until the migration ends or wait
		// is over, so that its end is seen at once. One that cannot
		// wait (its driver does not say when a migration changes)
		// answers at once, and is read again after wait.
		if time.Since(lastRead) < wait {
			select {
			case <-ctx.Done():
				return hostapi.MigrationStatus{}, ctx.Err()
			case <-time.After(wait - time.Since(lastRead)):
			}
		}
		lastRead = time.Now()
		var st hostapi.MigrationStatus
		err := c.whileUnavailable(ctx, func(ctx context.Context) (err error) {
			st, err = srcA.MigrationStatusWait(ctx, vmID, wait)
			return err
		})
		if err != nil {
			return st, fmt.Errorf("read migration status: %w", err)
		}
		c.updateMigration(context.WithoutCancel(ctx), id, func(m *api.Migration) error {
			m.Strategy = st.Strategy
			m.Progress = progress(st)
			m.Passes = api.RecordPass(m.Passes, m.Progress, time.Now())
			if st.Convergence != nil {
				m.Convergence = st.Convergence
			}
			m.Decisions = mergeDecisions(m.Decisions, st.Decisions)
			return nil
		})
		now, moved := time.Now(), st.MemoryTransferred+st.DiskTransferred
		c.cfg.Metrics.MigrationStalled(api.KindLive, stall.resumed(now, moved))
		if stall.stalled(now, moved) && st.Status == driver.MigrationActive && !st.Strategy.PostCopy() {
			return st, fmt.Errorf("nothing moved for %s: the migration link is cut or stalled", stallTimeout)
		}
		switch {
		case st.Status == driver.MigrationPostCopyPaused, st.Strategy.PostCopy() && st.Status == driver.MigrationFailed:
			return st, &postCopySplit{status: st.Status, err: st.Error}
		}
		switch st.Status {
		case driver.MigrationCompleted:
			return st, nil
		case driver.MigrationFailed, driver.MigrationCancelled, driver.MigrationNone:
			reason := st.Error
			switch {
			case reason != "":
			case st.Status == driver.MigrationNone:
				reason = "the source has no outgoing migration any more (its agent restarted and lost it)"
			default:
				reason = "migration " + st.Status + " on the source"
			}
			return st, errors.New(reason)
		}
	}
}

func progress(st hostapi.MigrationStatus) api.MigrationProgress {
	p := api.MigrationProgress{
		MemoryTotal: st.MemoryTotal, MemoryTransferred: st.MemoryTransferred, MemoryRemaining: st.MemoryRemaining,
		MemoryZero: st.MemoryZero, DiskTotal: st.DiskTotal, DiskTransferred: st.DiskTransferred,
		DirtyRate: st.DirtyRate, Throughput: st.Throughput, Pass: st.Pass,
		ExpectedDowntimeMS: st.ExpectedDowntimeMS, DowntimeMS: st.DowntimeMS, TotalTimeMS: st.TotalTimeMS,
	}
	// Remaining memory plus what the guest dirties meanwhile, at the
	// throughput seen: a lower bound while pre-copy converges.
	if net := st.Throughput - float64(st.DirtyRate); net > 0 {
		p.ETAMS = int64(float64(st.MemoryRemaining) / net * 1000)
	}
	return p
}

// mergeDecisions adds the driver's decisions (the convergence engine's
// choices and switches) to the migration's own, once each.
func mergeDecisions(have, from []api.Decision) []api.Decision {
	for _, d := range from {
		seen := false
		for _, h := range have {
			if h.At.Equal(d.At) && h.Action == d.Action {
				seen = true
				break
			}
		}
		if !seen {
			have = append(have, d)
		}
	}
	return have
}

// postCopySplit is a live move that failed after its switch to post-copy
// (the link cut, QEMU's postcopy-paused; or a failure of either end):
// the guest runs on the destination, some of its memory is still only
// on the source, and no rollback applies.
type postCopySplit struct {
	status, err string // the source's migration status and QEMU's error
}

func (e *postCopySplit) Error() string {
	return fmt.Sprintf("migration %s after the switch to post-copy: %s", e.status, e.err)
}

// reason is what the migration record says, and what to do.
func (e *postCopySplit) reason(src, dst string) string {
	return fmt.Sprintf("the migration failed after the switch to post-copy (source: %s; %s). The guest's newest state is on %s and part of its memory "+
		"is still only on %s: neither copy alone is the vm, so nothing was rolled back and both are kept. The copy on %s must never be resumed. "+
		"If the link or the hosts recover, QEMU can resume the transfer (postcopy recovery: migrate-recover on %s, migrate with resume on %s; "+
		"godwit does not do this by itself yet); otherwise the vm is lost and must be rebuilt from its disk (godwit rebuild)",
		e.status, e.err, dst, src, src, dst, src)
}

// cancelOnSource cancels an outgoing migration and waits until the source
// says it is over. It reports handedOver when the migration completed
// all the same — a cancel that arrives while QEMU (or the fake) is
// already switching over is too late: the guest is then paused on the
// source, its state sent to a destination that never ran it (the caller
// has not switched over), and the caller hands it back (handBack).
func (c *Service) cancelOnSource(ctx context.Context, srcA *hostapi.Agent, vmID string) (handedOver bool, err error) {
	st, err := srcA.MigrationStatus(ctx, vmID)
	if err != nil || st.Status == driver.MigrationActive {
		if err := srcA.CancelMigration(ctx, vmID); err != nil {
			return false, err
		}
		for {
			if st, err = srcA.MigrationStatus(ctx, vmID); err != nil {
				return false, err
			}
			if st.Status != driver.MigrationActive {
				break
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	// (A VM that itself arrived by migration reports "completed" too,
	// with nothing sent: that is not an outgoing move.)
	return st.Status == driver.MigrationCompleted && st.MemoryTransferred > 0, nil
}

// handBack undoes a move whose source handed the guest over to a
// destination that never ran it: the decision is recorded first (a
// recovery finishes it rather than moving forward), the destination's
// copy goes, and only then the source's paused guest resumes — never two
// copies that could run.
func (c *Service) handBack(ctx context.Context, id string, srcA *hostapi.Agent, dropDst func(context.Context, string) error, vmID, cause string) error {
	c.decision(ctx, id, decisionResumeSource, cause+"; the destination never ran the guest: its copy is removed and the guest resumes on the source")
	if err := c.whileUnavailable(ctx, func(ctx context.Context) error { return gone(dropDst(ctx, vmID)) }); err != nil {
		return fmt.Errorf("%s, and removing the destination's copy failed (%w); the source's paused copy is the vm: remove the destination's, then resume it", cause, err)
	}
	if err := c.whileUnavailable(ctx, func(ctx context.Context) error { _, err := srcA.Resume(ctx, vmID); return err }); err != nil {
		return fmt.Errorf("%s, and resuming the source's paused copy failed (%w); that copy is the vm: resume it", cause, err)
	}
	c.log.Warn("a migration completed as it was cancelled; its guest resumed on the source", "op", id, "vm_id", vmID)
	return nil
}

// gone is err, but nil for a copy that is not there (any more).
func gone(err error) error {
	if errors.Is(err, errs.ErrNotFound) {
		return nil
	}
	return err
}

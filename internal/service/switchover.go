package service

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
)

// A live move whose source has sent everything has its guest paused on
// the source; if the destination then fails to resume it, no undo step
// applies blindly. The destination is asked whether its copy's guest has
// run (hostapi.VMReport.Incoming), and the answer decides:
//
//	it ran           the guest's newest state is there: finish the move
//	it never ran     the source's paused copy is still the newest: remove the
//	                 destination's copy, resume the source's: rolled back
//	no one can tell  touch nothing: needs attention, saying what to check
//
// The destination's copy goes before the source resumes: on a shared disk
// the destination may hold the image open, and two QEMUs must never write
// it. After a switch to post-copy the source's copy is stale whatever the
// destination says, so the source never resumes.

// decisionResumeSource is recorded before a move's rollback to its paused
// source begins; recovery resumes the source only if it finds it.
const decisionResumeSource = "resume on the source"

// liveMove is what switchOverFailed needs of a live move.
type liveMove struct {
	id         string // the migration
	vm         api.VM
	src, dst   string // host names
	srcA, dstA *hostapi.Agent
	dropDst    func(context.Context, string) error // Release or DeleteVM
	postCopy   bool                                // it switched to post-copy
}

// switchOverFailed handles a move whose guest did not resume on the
// destination (err) after the source sent everything. It returns the
// destination's report and true when the guest ran there: the caller
// finishes the move. Otherwise it has ended the migration.
func (c *Service) switchOverFailed(ctx context.Context, log *slog.Logger, mv liveMove, err error) (hostapi.VMReport, bool) {
	cause := fmt.Sprintf("%s sent everything but the guest did not resume on %s: %v", mv.src, mv.dst, err)
	log.Warn("switch-over failed; asking the destination whether the guest ran there", "err", err)
	var rep hostapi.VMReport
	qerr := c.whileUnavailable(ctx, func(ctx context.Context) (err error) { rep, err = mv.dstA.VM(ctx, mv.vm.ID); return err })
	var unknown string
	switch {
	case qerr != nil:
		unknown = fmt.Sprintf("%s does not say whether the guest ran there (%v)", mv.dst, qerr)
	case rep.Incoming == "":
		c.decision(ctx, mv.id, "finish on the destination", cause+"; but the guest has run on "+mv.dst+" ("+rep.State+"), so the move goes forward")
		log.Warn("the guest ran on the destination despite the error; finishing the move", "state", rep.State)
		return rep, true
	case rep.Incoming == "waiting" && mv.postCopy:
		unknown = fmt.Sprintf("%s says the guest never ran there, yet the move had switched to post-copy", mv.dst)
	case rep.Incoming == "waiting":
		c.resumeSource(ctx, log, mv, cause)
		return rep, false
	default:
		unknown = fmt.Sprintf("%s cannot tell whether the guest ran there (%s)", mv.dst, rep.Incoming)
	}
	reason := fmt.Sprintf("%s; %s. Nothing was changed: the vm's copy on %s is paused and the record still names %s. "+
		"Check %s: if the guest runs or ran there, that copy is the vm, and the paused copy on %s must never be resumed; "+
		"only if it never ran there may its copy be removed and the copy on %s resumed", cause, unknown, mv.src, mv.src, mv.dst, mv.src, mv.src)
	if mv.postCopy {
		reason = fmt.Sprintf("%s; %s. Nothing was changed. The move had switched to post-copy, so the paused copy on %s is stale and must never be resumed: "+
			"check the copy on %s, which holds the guest's newest state", cause, unknown, mv.src, mv.dst)
	}
	log.Error("switch-over failed and the destination's state is unknown; leaving both copies", "why", unknown)
	if _, err := c.advance(ctx, mv.id, api.MigNeedsAttention, reason); err != nil {
		log.Error("record migration failure", "err", err)
	}
	return rep, false
}

// resumeSource rolls back a move whose destination never ran the guest:
// its copy there is removed, then the source's paused copy resumes.
func (c *Service) resumeSource(ctx context.Context, log *slog.Logger, mv liveMove, cause string) {
	attention := func(what string) {
		log.Error("rolling back to the source failed", "step", what)
		if _, err := c.advance(ctx, mv.id, api.MigNeedsAttention, cause+"; "+mv.dst+" never ran the guest, but "+what); err != nil {
			log.Error("record migration failure", "err", err)
		}
	}
	// Recorded before the first step, so the record says what was under
	// way should the controller stop half-way.
	c.decision(ctx, mv.id, decisionResumeSource, cause+"; "+mv.dst+" says the guest never ran there: its copy is removed and the guest resumes on "+mv.src)
	if err := c.whileUnavailable(ctx, func(ctx context.Context) error { return mv.dropDst(ctx, mv.vm.ID) }); err != nil {
		attention(fmt.Sprintf("removing its copy there failed (%v). The copy on %s is paused and is the vm: remove the copy on %s, then resume the one on %s", err, mv.src, mv.dst, mv.src))
		return
	}
	var rep hostapi.VMReport
	if err := c.whileUnavailable(ctx, func(ctx context.Context) (err error) { rep, err = mv.srcA.Resume(ctx, mv.vm.ID); return err }); err != nil {
		attention(fmt.Sprintf("after its copy there was removed, resuming the paused copy on %s failed (%v). That copy is the vm: resume it on %s", mv.src, err, mv.src))
		return
	}
	state, reason, pid := observed(rep)
	if _, err := c.store.UpdateVM(ctx, mv.vm.Name, func(v *api.VM) error {
		v.Host, v.State, v.StateReason, v.PID = mv.src, state, reason, pid
		return nil
	}); err != nil {
		log.Error("record the vm on the source", "err", err) // the heartbeat corrects it
	}
	log.Warn("switch-over failed; the destination never ran the guest, which runs on the source again")
	if _, err := c.advance(ctx, mv.id, api.MigRolledBack, cause+"; "+mv.dst+" could not resume the guest and never ran it, so its copy was removed and the vm runs on "+mv.src+" again"); err != nil {
		log.Error("record migration failure", "err", err)
	}
}

package intent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/metrics"
	"github.com/godwit/godwit/internal/service"
	"github.com/godwit/godwit/internal/store"
)

// An intent is what a user asked for (drain a host, evacuate it, resize a
// VM, rebuild it) and the service operations it became. The record holds
// everything the controller needs to go on: a runner reads it, starts
// operations within the intent's limits, observes them, and writes each
// change back before acting on it. A restarted controller starts a runner
// for every intent that had not ended (resumeIntents), and the runner
// picks up where the record says it was.
//
// Operations of kind live and cold are migrations: the runner starts them
// through the same path as `godwit migrate` and follows their records;
// the migration state machine (and its recovery) is theirs. Operations of
// kind rebuild, resize and stop run in the controller, step by step, each
// step idempotent so that a resumed runner can repeat it.

// intentTick is how often a runner looks at its operations; an
// operation's end also wakes it at once.
const intentTick = 250 * time.Millisecond

// Runner plans intents, records them and runs them.
type Runner struct {
	svc   *service.Service
	store store.Store // the intent records
	log   *slog.Logger

	// The runners and operations alive in this process, so a resumed or
	// re-triggered runner never doubles them.
	mu      sync.Mutex
	runners map[string]bool
	ops     map[string]bool // intent id + "/" + vm
	wake    map[string]chan struct{}
}

// New returns the runner of a service's intents, kept in st.
func New(svc *service.Service, st store.Store, log *slog.Logger) *Runner {
	return &Runner{svc: svc, store: st, log: log, runners: map[string]bool{}, ops: map[string]bool{}, wake: map[string]chan struct{}{}}
}

// Start resumes, in the background, every intent that had not ended.
func (r *Runner) Start(ctx context.Context) { go r.resumeIntents(ctx) }

// CancelIntent stops an intent from starting further operations. Running
// migrations finish, or with AbortRunning are aborted and roll back; the
// runner records the end.
func (r *Runner) CancelIntent(ctx context.Context, id string, req api.CancelIntentRequest) (api.Intent, error) {
	in, err := r.store.UpdateIntent(ctx, id, func(in *api.Intent) error {
		switch in.State {
		case api.IntentAwaitingConfirm:
			return errs.Conflict("intent %s is %s: its %s is done and runs nothing; keep it with: godwit intent confirm %s, or undo it with: godwit intent revert %s", id, in.State, heldWhat(*in), id, id)
		case api.IntentReverting:
			return errs.Conflict("intent %s is %s: a revert runs to its end (a migration of it can be aborted with: godwit migration abort ID)", id, in.State)
		}
		if in.State.Final() {
			return errs.Conflict("intent %s already ended (%s); nothing to cancel", id, in.State)
		}
		in.State = api.IntentCancelling
		if !in.Stopped {
			in.Reason = "cancelled on request"
		}
		if req.AbortRunning {
			in.Params.AbortRunning = true
		}
		return nil
	})
	if err != nil {
		return api.Intent{}, err
	}
	r.log.Info("intent cancel requested", "intent", id, "kind", in.Kind, "target", in.Target, "abort_running", req.AbortRunning)
	return in, nil
}

// startIntent persists a new intent and starts its runner.
func (r *Runner) startIntent(ctx context.Context, in api.Intent) (api.Intent, error) {
	in, err := r.createIntent(ctx, in)
	if err != nil {
		return api.Intent{}, err
	}
	go r.runIntent(context.WithoutCancel(ctx), in.ID)
	return in, nil
}

// createIntent persists a new intent, running, its planned operations
// pending; nothing runs it yet.
func (r *Runner) createIntent(ctx context.Context, in api.Intent) (api.Intent, error) {
	now := time.Now().UTC()
	in.ID, in.State, in.CreatedAt, in.UpdatedAt = service.NewID(), api.IntentRunning, now, now
	for i := range in.Operations {
		if in.Operations[i].State == api.OpPlanned {
			in.Operations[i].State = api.OpPending
		}
	}
	if err := r.store.CreateIntent(ctx, in); err != nil {
		return api.Intent{}, err
	}
	r.log.Info("intent started", "intent", in.ID, "kind", in.Kind, "target", in.Target, "operations", len(in.Operations))
	failpoint.Hit(string(in.Kind) + "/after-plan") // persisted, nothing done yet
	return in, nil
}

// resumeIntents starts a runner for every intent a previous controller
// left unfinished.
func (r *Runner) resumeIntents(ctx context.Context) {
	ins, err := r.store.Intents(ctx, store.IntentFilter{Active: true})
	if err != nil {
		r.log.Error("list unfinished intents", "err", err)
		return
	}
	for _, in := range ins {
		r.log.Info("resuming intent", "intent", in.ID, "kind", in.Kind, "target", in.Target, "state", in.State)
		go r.runIntent(ctx, in.ID)
	}
}

// runIntent drives one intent until it ends: each tick it starts the
// operations its limits allow and finishes the intent when none is left.
func (r *Runner) runIntent(ctx context.Context, id string) {
	r.mu.Lock()
	if r.runners[id] {
		r.mu.Unlock()
		return
	}
	r.runners[id] = true
	wake := make(chan struct{}, 1)
	r.wake[id] = wake
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.runners, id)
		delete(r.wake, id)
		r.mu.Unlock()
	}()
	log := r.log.With("intent", id)
	tick := time.NewTicker(intentTick)
	defer tick.Stop()
	for {
		in, err := r.store.Intent(ctx, id)
		if err != nil {
			log.Error("read intent", "err", err)
		} else if in.State.Settled() { // ended, or held for the user's word
			return
		} else if err := r.stepIntent(ctx, in); err != nil {
			log.Error("intent step", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
	}
}

// wakeRunner makes an intent's runner look at it now.
func (r *Runner) wakeRunner(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case r.wake[id] <- struct{}{}:
	default: // it will look anyway
	}
}

// stepIntent is one look at an intent: start what may start, end it when
// nothing is left.
func (r *Runner) stepIntent(ctx context.Context, in api.Intent) error {
	running, pending := 0, 0
	for i, op := range in.Operations {
		switch op.State {
		case api.OpRunning:
			running++
			r.launchOp(ctx, in, i) // after a restart: pick it up again
			if in.State == api.IntentCancelling && in.Params.AbortRunning && op.MigrationID != "" {
				r.abortForIntent(ctx, op.MigrationID)
			}
		case api.OpPending:
			pending++
		}
	}
	if in.State == api.IntentCancelling {
		if running > 0 {
			return nil
		}
		var never []api.OperationKind // operations cancelled before they started
		ended, err := r.store.UpdateIntent(ctx, in.ID, func(in *api.Intent) error {
			never = never[:0]
			for i := range in.Operations {
				if in.Operations[i].State == api.OpPending {
					in.Operations[i].State, in.Operations[i].Reason = api.OpCancelled, "the intent was cancelled before it started"
					never = append(never, in.Operations[i].Kind)
				}
			}
			return r.finishIntent(in, api.IntentCancelled)
		})
		if err == nil {
			for _, k := range never {
				r.metrics().OperationEnded(k, api.OpCancelled)
			}
			r.metrics().IntentEnded(ended)
		}
		return err
	}
	if pending == 0 && running == 0 {
		ended, err := r.store.UpdateIntent(ctx, in.ID, func(in *api.Intent) error { return r.finishIntent(in, "") })
		if err == nil {
			r.metrics().IntentEnded(ended)
		}
		return err
	}
	limits := r.limitsFor(in)
	for i, op := range in.Operations {
		if op.State != api.OpPending {
			continue
		}
		if running >= limits.perIntent {
			break
		}
		if ok, err := r.mayStart(ctx, in, op, limits); err != nil || !ok {
			continue
		}
		now := time.Now().UTC()
		// The next mayStart sees this operation running (and, under a
		// link limit, still preparing).
		updated, err := r.store.UpdateIntent(ctx, in.ID, func(in *api.Intent) error {
			o := &in.Operations[i]
			if o.State != api.OpPending || (in.State != api.IntentRunning && in.State != api.IntentReverting) {
				return errs.Conflict("operation changed under the runner")
			}
			o.State, o.StartedAt, o.Attempts = api.OpRunning, now, o.Attempts+1
			return nil
		})
		if err != nil {
			continue
		}
		in = updated
		running++
		r.launchOp(ctx, in, i)
	}
	return nil
}

// finishIntent sets an intent's final state from its operations (or to
// state when given) — called inside an UpdateIntent.
func (r *Runner) finishIntent(in *api.Intent, state api.IntentState) error {
	if state == "" {
		state = api.IntentCompleted
		for _, op := range in.Operations {
			if op.State == api.OpSkipped || op.State == api.OpFailed || op.State == api.OpCancelled {
				if state == api.IntentCompleted {
					state = api.IntentPartial
				}
			}
		}
		switch {
		case in.State == api.IntentReverting && state == api.IntentCompleted:
			state = api.IntentReverted
		case in.State == api.IntentReverting:
			in.Reason = strings.TrimSuffix("the revert did not complete; see each operation's reason; "+in.Reason, "; ")
		case state == api.IntentPartial && in.Reason == "":
			in.Reason = "some operations were skipped or failed; see each operation's reason"
		case state == api.IntentCompleted && in.Params.Hold && !in.Stopped:
			// A held resize or cold migration: it waits, running nothing,
			// for confirm or revert (hold.go); not an end, so no
			// FinishedAt.
			in.State = api.IntentAwaitingConfirm
			r.log.Info("intent awaiting confirmation", "intent", in.ID, "kind", in.Kind, "target", in.Target)
			return nil
		}
	}
	if in.Stopped {
		state = api.IntentFailed
	}
	in.State, in.FinishedAt = state, time.Now().UTC()
	r.log.Info("intent ended", "intent", in.ID, "kind", in.Kind, "target", in.Target, "state", state)
	return nil
}

// launchOp runs operation i of an intent in the background, unless this
// process already runs it.
func (r *Runner) launchOp(ctx context.Context, in api.Intent, i int) {
	op := in.Operations[i]
	key := in.ID + "/" + op.VM
	r.mu.Lock()
	if r.ops[key] {
		r.mu.Unlock()
		return
	}
	r.ops[key] = true
	r.mu.Unlock()
	go func() {
		defer func() {
			r.mu.Lock()
			delete(r.ops, key)
			r.mu.Unlock()
		}()
		var out outcome
		switch op.Kind {
		case api.OpLive, api.OpCold:
			out = r.execMigration(ctx, in, i)
		case api.OpStop:
			out = r.execStop(ctx, op)
		case api.OpRebuild:
			out = r.execRebuild(ctx, in, i)
		case api.OpResize:
			out = r.execResize(ctx, in, i)
		default:
			out = outcome{state: api.OpSkipped, reason: op.Reason}
		}
		r.recordOutcome(ctx, in.ID, i, out)
	}()
}

// outcome is how an operation ended; state pending puts it back in the
// queue (it could not start yet: its VM was busy, or every destination
// was at its limit).
type outcome struct {
	state          api.OperationState
	reason, dest   string
	strategy       api.Strategy
	migrationID    string
	clearMigration bool // a retry: the next attempt starts a new migration
}

// maxRestartRetries bounds how often an operation whose migration a
// controller restart rolled back is tried again.
const maxRestartRetries = 3

// recordOutcome writes an operation's end and applies the intent's
// failure policy to a failed one.
func (r *Runner) recordOutcome(ctx context.Context, id string, i int, out outcome) {
	if out.state == api.OpRunning {
		return // the controller is stopping; a resumed runner goes on
	}
	var kind api.IntentKind
	var final *api.Operation // the operation as it ended, when it did (a policy may queue it again)
	_, err := r.store.UpdateIntent(context.WithoutCancel(ctx), id, func(in *api.Intent) error {
		kind, final = in.Kind, nil
		o := &in.Operations[i]
		defer func() {
			if o.State != api.OpPending && o.State != api.OpRunning {
				end := *o
				final = &end
			}
		}()
		if out.state == api.OpPending {
			o.State = api.OpPending
			if out.clearMigration {
				o.MigrationID = ""
			} else {
				o.Attempts = max(o.Attempts-1, 0)
			}
			if out.reason != "" {
				o.Reason = out.reason
			}
			return nil
		}
		o.State, o.Reason, o.FinishedAt = out.state, out.reason, time.Now().UTC()
		if out.dest != "" {
			o.Destination = out.dest
		}
		if out.strategy != "" {
			o.Strategy = out.strategy
		}
		if out.state != api.OpFailed || in.Kind != api.IntentDrain {
			return nil
		}
		switch in.Params.OnFailure {
		case api.OnFailureCold:
			if o.Kind == api.OpLive {
				o.Kind, o.State, o.MigrationID, o.Strategy = api.OpCold, api.OpPending, "", ""
				o.Reason = "live migration failed (" + out.reason + "); trying cold, by policy"
			} else {
				o.State = api.OpFailed
			}
		case api.OnFailureStop:
			o.Kind, o.State, o.MigrationID = api.OpStop, api.OpPending, ""
			o.Reason = "migration failed (" + out.reason + "); stopping it where it is, by policy"
		case api.OnFailureAbort:
			in.State, in.Stopped, o.State = api.IntentCancelling, true, api.OpFailed
			in.Reason = "vm " + o.VM + " could not move (" + out.reason + "); the drain stops, by policy (on-failure abort)"
		default: // skip
			o.State = api.OpSkipped
			o.Reason = "could not move (" + out.reason + "); left running on " + o.Source + ", by policy (on-failure skip)"
		}
		return nil
	})
	if err != nil {
		r.log.Error("record operation outcome", "intent", id, "err", err)
	} else if final != nil {
		r.metrics().OperationEnded(final.Kind, final.State)
	}
	if err == nil && kind == api.IntentDrain && out.state == api.OpDone {
		failpoint.Hit("drain/move-done") // recorded done, before the next
	}
	r.wakeRunner(id)
}

// limits are the concurrency limits an intent runs under.
type limits struct {
	perIntent, perSource, perDest, perCluster int
	// transfers bounds the live moves of a drain that send memory out
	// of the source at once (0: no bound, for other intents).
	transfers int
}

// limitsFor is the concurrency an intent runs under: its own limits, or
// the cluster's settings (service.BuiltinSettings where those say
// nothing), read each time: a changed setting applies to the intents
// that run.
func (r *Runner) limitsFor(in api.Intent) limits {
	def, err := r.svc.EffectiveSettings(context.Background())
	if err != nil {
		r.log.Warn("read the cluster settings; using the built-in defaults", "err", err)
	}
	l := limits{
		perSource:  cmp.Or(in.Params.MaxPerSource, def.MaxPerSource),
		perDest:    cmp.Or(in.Params.MaxPerDestination, def.MaxPerDestination),
		perCluster: cmp.Or(in.Params.MaxPerCluster, def.MaxPerCluster),
	}
	if in.Kind == api.IntentDrain {
		l.transfers = in.Params.MaxTransfersPerSource
		if l.transfers == 0 {
			l.transfers = min(def.MaxTransfersPerSource, l.perSource)
		}
	}
	switch in.Kind {
	case api.IntentDrain:
		l.perIntent = min(l.perSource, l.perCluster)
	case api.IntentEvacuate:
		l.perIntent = l.perCluster
	default: // a resize's move, then the resize: in order
		l.perIntent = 1
	}
	return l
}

// mayStart says whether a pending operation may start now under the
// cluster-wide limits: migrations in flight anywhere count, not only the
// intent's own.
func (r *Runner) mayStart(ctx context.Context, in api.Intent, op api.Operation, l limits) (bool, error) {
	if op.Kind != api.OpLive && op.Kind != api.OpCold {
		return true, nil
	}
	active, err := r.store.Migrations(ctx, store.MigrationFilter{Active: true})
	if err != nil {
		return false, err
	}
	fromSource, preparing := 0, 0
	for _, o := range in.Operations {
		if o.State == api.OpRunning && o.Source == op.Source && o.MigrationID == "" && (o.Kind == api.OpLive || o.Kind == api.OpCold) {
			preparing++ // started, its migration not recorded yet
		}
	}
	for _, m := range active {
		if m.Source == op.Source {
			fromSource++
			if preparingMigration(m.State) {
				preparing++
			}
		}
	}
	// Under a link limit (a drain) one move out of the source prepares
	// at a time: the next prepares while the one before it sends, and
	// the first, on the drain's critical path, does not share the
	// machine with a second start of QEMU (docs/migration-tuning.md).
	if l.transfers > 0 && preparing > 0 {
		return false, nil
	}
	return len(active) < l.perCluster && fromSource < l.perSource, nil
}

// preparingMigration: the move has not reached its source's link yet.
func preparingMigration(state api.MigrationState) bool {
	switch state {
	case api.MigQueued, api.MigScheduling, api.MigPreparing:
		return true
	}
	return false
}

// abortForIntent aborts a running migration of a cancelled intent.
func (r *Runner) abortForIntent(ctx context.Context, migrationID string) {
	if _, err := r.svc.AbortMigration(ctx, migrationID); err != nil && !errors.Is(err, errs.ErrConflict) {
		r.log.Warn("abort migration of a cancelled intent", "op", migrationID, "err", err)
	}
}

// metrics is where intents and their operations are counted as they
// end: the service's (nil, counting nothing, without one).
func (r *Runner) metrics() *metrics.Controller { return r.svc.Metrics() }

// setOp persists a change to operation i of an intent.
func (r *Runner) setOp(ctx context.Context, id string, i int, fn func(*api.Operation)) error {
	_, err := r.store.UpdateIntent(context.WithoutCancel(ctx), id, func(in *api.Intent) error {
		fn(&in.Operations[i])
		return nil
	})
	return err
}

// errOf formats an error for an operation's reason.
func errOf(what string, err error) string { return fmt.Sprintf("%s: %v", what, err) }

// Intents lists intents, on one target or only those under way when the
// filter says.
func (r *Runner) Intents(ctx context.Context, f store.IntentFilter) ([]api.Intent, error) {
	return r.store.Intents(ctx, f)
}

// Intent returns one intent's record.
func (r *Runner) Intent(ctx context.Context, id string) (api.Intent, error) {
	return r.store.Intent(ctx, id)
}

package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/scheduler"
	"github.com/godwit/godwit/internal/store"
)

// Limits on per-migration tuning (api's, which agents check too).
const (
	MaxDowntimeLimitMS = api.MaxDowntimeLimitMS
	MaxBandwidthMBPerS = api.MaxBandwidthMBPerS
)

// ValidateMigrate checks a migration request's fields; an empty kind
// (live if it can, else cold) is valid here.
func ValidateMigrate(req api.MigrateRequest) error {
	switch req.Kind {
	case api.KindLive, api.KindCold:
	case "": // live if it can, else cold
	default:
		return errs.Invalid("kind %q is unknown; use live or cold", req.Kind)
	}
	if req.MaxDowntimeMS < 0 || req.MaxDowntimeMS > MaxDowntimeLimitMS {
		return errs.Invalid("max_downtime_ms must be between 1 and %d (0 for the default)", MaxDowntimeLimitMS)
	}
	if req.Kind == api.KindCold && (req.PostCopy || req.AutoConverge) {
		return errs.Invalid("post_copy and auto_converge tune live migrations; a cold migration moves a stopped VM")
	}
	if req.BandwidthMBPerS < 0 || req.BandwidthMBPerS > MaxBandwidthMBPerS {
		return errs.Invalid("bandwidth_mb_per_s must be between 1 and %d (0 for the default)", MaxBandwidthMBPerS)
	}
	return ValidatePolicy(req.Kind, req.Policy, req.PostCopy, req.NoPostCopy)
}

// ValidatePolicy checks a live migration's convergence policy.
func ValidatePolicy(kind api.MigrationKind, policy api.Policy, postCopy, noPostCopy bool) error {
	if policy != "" && !policy.Known() {
		names := make([]string, len(api.Policies))
		for i, p := range api.Policies {
			names[i] = string(p)
		}
		return errs.Invalid("policy %q is unknown; use one of %s", policy, strings.Join(names, ", "))
	}
	if kind == api.KindCold && (policy != "" || noPostCopy) {
		return errs.Invalid("policy and no_post_copy tune live migrations; a cold migration moves a stopped VM")
	}
	if noPostCopy && (postCopy || policy == api.PolicyPostCopy) {
		return errs.Invalid("no_post_copy contradicts post_copy (or policy post-copy); ask for one")
	}
	return nil
}

// postCopyFor decides whether a live migration between hosts may switch
// to post-copy: asked for explicitly (post_copy, or the post-copy policy),
// it must be possible or the request is refused; under the auto policy it
// is permitted wherever it is possible and neither the cluster nor the
// request forbids it. It is not possible with a block copy of a local
// disk, nor where a host's driver does not offer it (driver capability
// PostCopy: under TCG only from QEMU 9.0, docs/migration.md). Before a
// destination is chosen, hosts is the source alone.
func (c *Service) postCopyFor(vm api.VM, req api.MigrateRequest, hosts ...api.Host) (bool, error) {
	explicit := req.PostCopy || req.Policy == api.PolicyPostCopy
	auto := req.Policy == "" || req.Policy == api.PolicyAuto
	var why string
	if vm.Pool == api.PoolLocal && vm.Flavor.DiskMiB > 0 {
		why = fmt.Sprintf("vm %q has a local disk, copied by block mirror; post-copy with a block copy is not supported (drop post_copy, or use the shared pool)", vm.Name)
	}
	for _, h := range hosts {
		switch {
		case why != "" || h.PostCopy:
		case h.Accelerator == driver.AccelTCG:
			why = fmt.Sprintf("host %s does not offer post-copy: it runs TCG on QEMU %s, and post-copy under TCG needs QEMU %s or later; force-complete will pause the guest instead",
				h.Name, cmp.Or(h.QEMUVersion, "of unknown version"), driver.TCGMigrationSafeQEMU)
		default:
			why = fmt.Sprintf("host %s does not offer post-copy (its agent reports no support; an old agent does not report it: upgrade it); force-complete will pause the guest instead", h.Name)
		}
	}
	switch {
	case explicit && why != "":
		return false, errs.NotSupported("%s", why)
	case explicit:
		return true, nil
	case auto && why == "" && !c.cfg.NoPostCopy && !req.NoPostCopy:
		return true, nil
	}
	return false, nil
}

// MoveOptions are what a migration started on behalf of an intent adds to
// the request.
type MoveOptions struct {
	// Intent is the intent the move belongs to ("" for none).
	Intent string
	// Transfers, when positive, makes a live migration wait, prepared,
	// until fewer than that many transfers leave its source (a drain's
	// share of the source's link).
	Transfers int
	// Decisions are recorded on the migration from the start: why it is
	// of this kind, for one.
	Decisions []api.Decision
	// MaxPerDestination, when positive, passes over destinations that already
	// receive that many migrations; when only those could take the VM,
	// StartMigration fails with ErrDestinationsBusy.
	MaxPerDestination int
}

// ErrDestinationsBusy: every host that can take the VM is receiving as
// many migrations as MoveOptions.MaxPerDestination allows; try again later.
var ErrDestinationsBusy = errors.New("every host that can take it is receiving its share of moves")

// chooseDestination is the scheduler's choice among others. With
// maxPerDest it passes over the hosts receiving that many migrations, and
// says so (ErrDestinationsBusy) when only they could take the VM.
func (c *Service) chooseDestination(ctx context.Context, others []api.Host, p scheduler.Placement, maxPerDest int) (api.Host, error) {
	if maxPerDest <= 0 {
		return c.pick(others, p)
	}
	active, err := c.store.Migrations(ctx, store.MigrationFilter{Active: true})
	if err != nil {
		return api.Host{}, err
	}
	into := map[string]int{}
	for _, m := range active {
		into[m.Destination]++
	}
	var free []api.Host
	for _, h := range others {
		if into[h.Name] < maxPerDest {
			free = append(free, h)
		}
	}
	dst, err := c.pick(free, p)
	if err == nil {
		return dst, nil
	}
	if _, aerr := c.pick(others, p); aerr != nil {
		return api.Host{}, aerr // no host can take it at all: say why
	}
	return api.Host{}, fmt.Errorf("%w (%d each)", ErrDestinationsBusy, maxPerDest)
}

// StartMigration checks a migration request of kind live or cold, chooses
// (or checks) the destination and records the migration with it — the
// destination's claim — then runs it in the background. The returned
// record is in state scheduling. Choosing the kind is the intent level's
// (intent.Runner.Migrate).
func (c *Service) StartMigration(ctx context.Context, name string, req api.MigrateRequest, o MoveOptions) (api.Migration, error) {
	if req.Kind != api.KindLive && req.Kind != api.KindCold {
		return api.Migration{}, errs.Invalid("kind %q is unknown; use live or cold", req.Kind)
	}
	if err := req.Normalize(); err != nil {
		return api.Migration{}, errs.Invalid("%v", err)
	}
	if err := ValidateMigrate(req); err != nil {
		return api.Migration{}, err
	}
	unlock, err := c.lockVM(name, "migration")
	if err != nil {
		return api.Migration{}, err
	}
	started := false
	defer func() {
		if !started {
			unlock()
		}
	}()
	vm, err := c.vmByName(ctx, name)
	if err != nil {
		return api.Migration{}, err
	}
	live := req.Kind == api.KindLive
	switch {
	case live && vm.State != api.VMRunning:
		return api.Migration{}, errs.Conflict("vm %q is %s; a live migration moves a running VM (start it, or migrate it cold)", name, vm.State)
	case !live && vm.State != api.VMRunning && vm.State != api.VMStopped:
		return api.Migration{}, errs.Conflict("vm %q is %s; a cold migration moves a running or stopped VM", name, vm.State)
	}
	src, err := c.hostOf(ctx, vm)
	if err != nil {
		return api.Migration{}, err
	}
	// What the request leaves out, the cluster's settings say; the record
	// keeps what applied.
	def, err := c.EffectiveSettings(ctx)
	if err != nil {
		return api.Migration{}, err
	}
	req.BandwidthMBPerS = cmp.Or(req.BandwidthMBPerS, def.BandwidthMBPerS)
	if live {
		req.MaxDowntimeMS = cmp.Or(req.MaxDowntimeMS, def.MaxDowntimeMS)
		switch {
		case req.Policy != "":
		case req.AutoConverge:
			req.Policy = api.PolicyAutoConverge // what auto_converge alone always meant
		case req.NoPostCopy && def.Policy == api.PolicyPostCopy:
			req.Policy = api.PolicyAuto // the request's no_post_copy wins
		case !req.PostCopy:
			req.Policy = def.Policy // auto, unless the cluster says otherwise
		}
		// Refused now if the source cannot; reserveDestination decides
		// once the destination is known. A source the TCG gate refuses is
		// left to reserveDestination, whose refusal says more.
		if c.refuseUnsafeTCG(src) == nil {
			if _, err = c.postCopyFor(vm, req, src); err != nil {
				return api.Migration{}, err
			}
		}
		if req.Policy == "" {
			req.Policy = api.PolicyAuto
		}
	}
	m, dst, err := c.reserveDestination(ctx, vm, src, req, o)
	if err != nil {
		return api.Migration{}, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.migMu.Lock()
	c.cancels[m.ID] = cancel
	c.migMu.Unlock()
	started = true
	go func() {
		defer unlock()
		defer cancel()
		if live {
			c.runLive(runCtx, m, vm, src, dst, o.Transfers)
		} else {
			c.runCold(runCtx, m, vm, src, dst)
		}
		c.migMu.Lock()
		delete(c.cancels, m.ID)
		c.migMu.Unlock()
	}()
	return m, nil
}

// reserveDestination picks or checks the destination and writes the
// migration record, atomically with every other placement: from then on
// the destination's capacity counts the VM (see hostsWithAllocations).
func (c *Service) reserveDestination(ctx context.Context, vm api.VM, src api.Host, req api.MigrateRequest, o MoveOptions) (api.Migration, api.Host, error) {
	c.schedMu.Lock()
	defer c.schedMu.Unlock()
	hosts, err := c.hostsWithAllocations(ctx)
	if err != nil {
		return api.Migration{}, api.Host{}, err
	}
	p := scheduler.Placement{Flavor: vm.Flavor, Pool: vm.Pool, Live: req.Kind == api.KindLive, Source: src, HotpluggedMiB: scheduler.Hotplugged(vm)}
	var dst api.Host
	if req.To != "" {
		found := false
		for _, h := range hosts {
			if h.Name == req.To {
				dst, found = h, true
			}
		}
		switch {
		case !found:
			return api.Migration{}, api.Host{}, errs.Invalid("host %q not found; list hosts with: godwit host list", req.To)
		case req.To == src.Name:
			return api.Migration{}, api.Host{}, errs.Invalid("vm %q already runs on %s; choose another destination", vm.Name, req.To)
		}
		if p.Live {
			if err := scheduler.RefuseLive(p); err != nil {
				return api.Migration{}, api.Host{}, err
			}
			if err := c.refuseUnsafeTCG(src, dst); err != nil {
				return api.Migration{}, api.Host{}, err
			}
			p.AllowUnsafeTCG = true // just checked, under the cluster's setting
		}
		if why := scheduler.Check(dst, p); why != "" {
			return api.Migration{}, api.Host{}, errs.NoCapacity("host %s cannot take vm %q: %s", req.To, vm.Name, why)
		}
	} else if dst, err = c.chooseDestination(ctx, scheduler.Without(hosts, src.Name), p, o.MaxPerDestination); err != nil {
		return api.Migration{}, api.Host{}, err
	}
	postCopy := false
	if p.Live {
		if postCopy, err = c.postCopyFor(vm, req, src, dst); err != nil {
			return api.Migration{}, api.Host{}, err
		}
	}
	// A cold move's disk goes between the agents over their API, TLS only
	// in a cluster with a CA; insecure_migration is for QEMU's streams.
	encrypted := c.cfg.AgentTLS != nil
	if p.Live {
		if encrypted, err = c.encryptMigrations(ctx); err != nil {
			return api.Migration{}, api.Host{}, err
		}
	}
	now := time.Now().UTC()
	m := api.Migration{
		ID: NewID(), Intent: o.Intent, VM: vm.Name, VMID: vm.ID, Project: vm.Project, Kind: req.Kind, State: api.MigScheduling,
		Source: src.Name, Destination: dst.Name, MaxDowntimeMS: req.MaxDowntimeMS, BandwidthMBPerS: req.BandwidthMBPerS,
		PostCopy: postCopy, AutoConverge: req.AutoConverge, Policy: req.Policy, Encrypted: encrypted,
		Phases:    []api.Phase{{State: api.MigQueued, At: now}, {State: api.MigScheduling, At: now}},
		Decisions: o.Decisions,
		CreatedAt: now, UpdatedAt: now,
	}
	if err := c.store.CreateMigration(ctx, m); err != nil {
		return api.Migration{}, api.Host{}, err
	}
	c.log.Info("migration scheduled", "vm", vm.Name, "op", m.ID, "kind", m.Kind, "from", src.Name, "to", dst.Name)
	return m, dst, nil
}

// advance moves a migration to state, persisting it (with the time it
// entered the state) before the step that state stands for begins.
//
// A final state is recorded in the metrics here, the one place every
// migration ends (the state table lets it end once).
func (c *Service) advance(ctx context.Context, id string, state api.MigrationState, reason string) (api.Migration, error) {
	m, err := c.updateMigration(context.WithoutCancel(ctx), id, func(m *api.Migration) error {
		if err := checkTransition(m.State, state); err != nil {
			return err
		}
		now := time.Now().UTC()
		m.State = state
		if reason != "" {
			m.Reason = reason
		}
		m.Phases = append(m.Phases, api.Phase{State: state, At: now})
		if state.Final() {
			m.FinishedAt = now
		}
		return nil
	})
	if err == nil && state.Final() {
		c.cfg.Metrics.MigrationEnded(m)
	}
	return m, err
}

// AbortMigration cancels a running migration; it rolls back in the
// background and ends in state cancelled.
func (c *Service) AbortMigration(ctx context.Context, id string) (api.Migration, error) {
	m, err := c.store.Migration(ctx, id)
	if err != nil {
		return m, err
	}
	c.migMu.Lock()
	cancel, running := c.cancels[id]
	c.migMu.Unlock()
	if !running || m.State.Final() {
		return m, errs.Conflict("migration %s is %s; only a running migration can be aborted", id, m.State)
	}
	if m.State == api.MigSwitchingOver || m.State == api.MigFinishing {
		return m, errs.Conflict("migration %s is %s: the VM already runs on the destination; it cannot be aborted now", id, m.State)
	}
	if m.Strategy.PostCopy() {
		return m, errs.Conflict("migration %s switched to post-copy: the VM runs on %s while its memory follows; it can only finish", id, m.Destination)
	}
	cancel()
	c.log.Info("migration abort requested", "op", id, "vm", m.VM)
	return m, nil
}

// Migrations lists migrations, of one VM or only those under way when the
// filter says.
func (c *Service) Migrations(ctx context.Context, f store.MigrationFilter) ([]api.Migration, error) {
	return c.store.Migrations(ctx, f)
}

// Migration returns one migration's record.
func (c *Service) Migration(ctx context.Context, id string) (api.Migration, error) {
	return c.store.Migration(ctx, id)
}

// CompleteMigration forces a live migration that is transferring to
// finish (post-copy where both hosts offer it, else by pausing the guest),
// and records the operator's decision.
func (c *Service) CompleteMigration(ctx context.Context, id string) (api.Migration, error) {
	m, err := c.store.Migration(ctx, id)
	if err != nil {
		return m, err
	}
	if m.Kind != api.KindLive || m.State != api.MigTransferring {
		return m, errs.Conflict("migration %s is a %s migration in state %s; only a live migration that is transferring can be forced to complete", m.ID, m.Kind, m.State)
	}
	src, err := c.store.Host(ctx, m.Source)
	if err != nil {
		return m, err
	}
	how, err := c.agent(src).ForceComplete(ctx, m.VMID)
	if err != nil {
		return m, fmt.Errorf("force-complete on %s: %w", src.Name, err)
	}
	m, err = c.updateMigration(ctx, m.ID, func(mm *api.Migration) error {
		mm.Decisions = append(mm.Decisions, api.Decision{At: time.Now().UTC(), Action: "force-complete: " + how, Reason: "requested by the operator"})
		return nil
	})
	if err != nil {
		return m, err
	}
	c.log.Info("migration forced to complete", "op", m.ID, "vm", m.VM, "how", how)
	return m, nil
}

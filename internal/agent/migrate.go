package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/converge"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/httpx"
)

// migrator returns the driver's live-migration side, or a not-supported
// error that says so.
func (a *Agent) migrator() (driver.LiveMigrator, error) {
	m, ok := a.drv.(driver.LiveMigrator)
	if !ok || !a.drv.Capabilities().LiveMigration {
		return nil, errs.NotSupported("the %s driver on host %s cannot live-migrate", a.cfg.Driver, a.cfg.Name)
	}
	return m, nil
}

// migrationHost is the address this host receives migrations on: the
// host part of the agent's listen address, or of the address it
// advertises when it listens on all of them; loopback when neither
// names one. It is always an IP address, since a source agent accepts
// nothing else (hostapi.ParseMigrationURI), and the controller checks it
// is the host's registered one (hostapi.TargetOnHost).
func (a *Agent) migrationHost(ctx context.Context) string {
	h, _, _ := net.SplitHostPort(a.cfg.Listen)
	if ip, err := netip.ParseAddr(h); h == "" || err == nil && ip.IsUnspecified() {
		h = "" // every address: the advertised one, if it names one
		if u, err := url.Parse(a.cfg.Advertise); err == nil {
			h = u.Hostname()
		}
	}
	if ip, ok := a.ipOf(ctx, h); ok {
		return ip
	}
	return "127.0.0.1"
}

// ipOf returns host as an IP address: itself when it is one, else its
// first IPv4 address (or first address) when it is a name that resolves.
func (a *Agent) ipOf(ctx context.Context, host string) (string, bool) {
	if host == "" {
		return "", false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.String(), !ip.IsUnspecified()
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		a.log.Warn("the listen or advertise name does not resolve; receiving migrations on loopback", "name", host, "err", err)
		return "", false
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap().String(), true
		}
	}
	return ips[0].String(), true
}

func (a *Agent) migrationRoutes(m *httpx.Routes) {
	m.HandleFunc("POST /v1/vms/{id}/incoming", a.incoming)
	m.HandleFunc("POST /v1/vms/{id}/migrate", a.migrateOut)
	m.HandleFunc("GET /v1/vms/{id}/migration", a.migrationStatus)
	m.HandleFunc("POST /v1/vms/{id}/migrate-cancel", a.migrateCancel)
	m.HandleFunc("POST /v1/vms/{id}/switch-over", a.switchOver)
	// The switch-over's route before it was renamed, for a controller of
	// the previous version (agents are upgraded first). Remove with it.
	m.HandleFunc("POST /v1/vms/{id}/complete-incoming", a.switchOver)
	m.HandleFunc("POST /v1/vms/{id}/resume", a.resume)
	m.HandleFunc("POST /v1/vms/{id}/release", a.release)
	m.HandleFunc("POST /v1/vms/{id}/migrate-complete", a.forceComplete)
}

func (a *Agent) incoming(w http.ResponseWriter, r *http.Request) {
	mg, err := a.migrator()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	req, spec, err := a.decodeCreate(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	enc, err := a.migrationTLS(req.Encrypt, "")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	in, err := mg.PrepareIncoming(r.Context(), spec, a.migrationHost(r.Context()), driver.MigrateOptions{PostCopy: req.PostCopy, TLS: enc})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("waiting for incoming migration", "vm", req.Name, "uri", in.URI, "nbd", in.NBD)
	failpoint.Hit("agent/incoming/before-reply") // the destination prepared, the reply not sent
	httpx.JSON(w, http.StatusOK, hostapi.IncomingReply{URI: in.URI, NBD: in.NBD, PostCopyPreempt: in.PostCopyPreempt})
}

func (a *Agent) migrateOut(w http.ResponseWriter, r *http.Request) {
	mg, err := a.migrator()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req hostapi.MigrateOut
	if err := httpx.Decode(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	// Decode validated req (hostapi.MigrateOut.Validate), its targets
	// first: QEMU would run an exec: URI's command, write the guest's
	// memory to a file: or unix: path, or mirror the disk to any NBD
	// server it is named.
	opts := driver.MigrateOptions{MaxDowntime: time.Duration(req.MaxDowntimeMS) * time.Millisecond, BandwidthBytesPerS: req.CapBytesPerS(),
		PostCopy: req.PostCopy, AutoConverge: req.AutoConverge, Policy: req.Policy,
		TimeoutPerGiB: time.Duration(req.CompletionTimeoutPerGiBS) * time.Second, TimeoutAction: req.TimeoutAction}
	if opts.TLS, err = a.migrationTLS(req.Encrypt, req.Destination); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := mg.MigrateOut(r.Context(), r.PathValue("id"), driver.Incoming{URI: req.URI, NBD: req.NBD, PostCopyPreempt: req.PostCopyPreempt}, opts); err != nil {
		a.fail(w, r, err)
		return
	}
	a.outgoing.started(r.PathValue("id"))
	a.log.Info("outgoing migration started", "id", r.PathValue("id"), "uri", req.URI)
	w.WriteHeader(http.StatusNoContent)
}

func (a *Agent) migrationStatus(w http.ResponseWriter, r *http.Request) {
	mg, err := a.migrator()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.awaitMigration(r, mg)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.outgoing.seen(a.metrics, r.PathValue("id"), st)
	conv, decisions := convergence(st.Convergence)
	httpx.JSON(w, http.StatusOK, hostapi.MigrationStatus{
		Status: st.Status, Error: st.Error, Strategy: st.Strategy,
		MemoryTotal: st.MemoryTotal, MemoryTransferred: st.MemoryTransferred, MemoryRemaining: st.MemoryRemaining, MemoryZero: st.MemoryZero,
		DiskTotal: st.DiskTotal, DiskTransferred: st.DiskTransferred,
		DirtyRate: st.DirtyRate, Throughput: st.Throughput, Pass: st.Pass,
		ExpectedDowntimeMS: st.ExpectedDowntime.Milliseconds(), DowntimeMS: st.Downtime.Milliseconds(), TotalTimeMS: st.TotalTime.Milliseconds(),
		Convergence: conv, Decisions: decisions,
	})
}

// awaitMigration reads an outgoing migration's status. Asked to wait
// (hostapi.WaitParam) and with a driver that says when the status
// changes, it answers once the migration is no longer active, or when the
// wait is over: the controller learns of the end at once, not at its
// next poll.
//
// A VM whose process is gone (killed, crashed) reads as failed, saying
// so, before the driver is asked anything: its QMP would not answer.
func (a *Agent) awaitMigration(r *http.Request, mg driver.LiveMigrator) (driver.MigrationStatus, error) {
	ctx, id := r.Context(), r.PathValue("id")
	read := func() (driver.MigrationStatus, error) {
		if why := a.processGone(ctx, id); why != "" {
			return driver.MigrationStatus{Status: driver.MigrationFailed, Error: why}, nil
		}
		return mg.MigrationStatus(ctx, id)
	}
	n, ok := mg.(driver.MigrationNotifier)
	wait := hostapi.ParseWait(r.URL.Query().Get(hostapi.WaitParam))
	if !ok || wait == 0 {
		return read()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if why := a.processGone(ctx, id); why != "" {
			return driver.MigrationStatus{Status: driver.MigrationFailed, Error: why}, nil
		}
		changed, err := n.MigrationChanged(ctx, id)
		if err != nil {
			return read()
		}
		st, err := mg.MigrationStatus(ctx, id)
		if err != nil || st.Status != driver.MigrationActive {
			return st, err
		}
		select {
		case <-changed:
		case <-timer.C:
			return read()
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// convergence is the engine's report in API terms.
func convergence(r *converge.Report) (*api.Convergence, []api.Decision) {
	if r == nil {
		return nil, nil
	}
	c := &api.Convergence{Policy: r.Policy, DirtyRate: int64(r.DirtyRate), DirtyRateSource: r.DirtyRateSource,
		Bandwidth: int64(r.Bandwidth), Prediction: r.Prediction, PredictedMS: r.Predicted.Milliseconds(),
		Strategy: r.Strategy, PostCopyAllowed: r.PostCopyAllowed, Throttle: r.Throttle}
	ds := make([]api.Decision, len(r.Decisions))
	for i, d := range r.Decisions {
		ds[i] = api.Decision{At: d.At, Action: d.Action, Reason: d.Reason}
	}
	return c, ds
}

func (a *Agent) migrateCancel(w http.ResponseWriter, r *http.Request) {
	a.migrationCall(w, r, func(mg driver.LiveMigrator) error {
		if a.processGone(r.Context(), r.PathValue("id")) != "" {
			return nil // no process, no migration left to cancel
		}
		return mg.CancelMigration(r.Context(), r.PathValue("id"))
	})
}

// switchOver is the destination's half of the switch-over: the guest
// runs here when it answers.
func (a *Agent) switchOver(w http.ResponseWriter, r *http.Request) {
	mg, err := a.migrator()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := mg.SwitchOver(r.Context(), r.PathValue("id"), 60*time.Second); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("switched over: the migrated vm runs here", "id", r.PathValue("id"))
	// The guest runs here, the reply not sent. The point keeps the name
	// the fault matrix knows it by (internal/e2e, docs/reliability.md).
	failpoint.Hit("agent/complete-incoming/before-reply")
	a.reply(w, r, r.PathValue("id"))
}

// resume runs the guest again on the source of a migration that sent
// everything but whose destination never ran it.
func (a *Agent) resume(w http.ResponseWriter, r *http.Request) {
	mg, err := a.migrator()
	if err == nil {
		err = mg.Resume(r.Context(), r.PathValue("id"))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Warn("guest resumed here after its migration's destination never ran it", "id", r.PathValue("id"))
	failpoint.Hit("agent/resume/before-reply")
	a.reply(w, r, r.PathValue("id"))
}

func (a *Agent) release(w http.ResponseWriter, r *http.Request) {
	rel, ok := a.drv.(driver.Releaser)
	if !ok {
		a.fail(w, r, errs.NotSupported("the %s driver cannot release a vm", a.cfg.Driver))
		return
	}
	if err := rel.Release(r.Context(), r.PathValue("id")); err != nil && !errors.Is(err, errs.ErrNotFound) {
		a.fail(w, r, err) // not found: released already
		return
	}
	a.removeSeed(r.PathValue("id"))
	failpoint.Hit("agent/release/before-reply")
	w.WriteHeader(http.StatusNoContent)
}

func (a *Agent) migrationCall(w http.ResponseWriter, r *http.Request, f func(driver.LiveMigrator) error) {
	mg, err := a.migrator()
	if err == nil {
		err = f(mg)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Agent) forceComplete(w http.ResponseWriter, r *http.Request) {
	fc, ok := a.drv.(driver.ForceCompleter)
	if !ok {
		a.fail(w, r, errs.NotSupported("the %s driver cannot force a migration to complete", a.cfg.Driver))
		return
	}
	how, err := fc.ForceComplete(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("migration forced to complete", "id", r.PathValue("id"), "how", how)
	httpx.JSON(w, http.StatusOK, map[string]string{"how": how})
}

package qemu

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
)

var _ driver.LiveMigrator = (*Driver)(nil)

// PrepareIncoming implements driver.LiveMigrator: the VM is defined as on
// any host, then QEMU starts with "-incoming defer" and is told where to
// listen. Its disk images open inactive, so the source keeps them until
// the switch-over even on shared storage.
func (d *Driver) PrepareIncoming(ctx context.Context, spec driver.VMSpec, listenHost string) (string, error) {
	if err := d.Create(ctx, spec); err != nil {
		return "", err
	}
	v, err := d.get(spec.ID)
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if alive(v.st.PID, spec.ID) {
		return "", errs.Conflict("vm %s already runs on this host", spec.ID)
	}
	v.st.Launch.Incoming = true
	err = d.start(ctx, v)
	v.st.Launch.Incoming = false // a later plain start boots normally
	if err != nil {
		return "", err
	}
	_ = writeState(v.dir, v.st)
	port, err := freePort(listenHost)
	if err != nil {
		return "", err
	}
	uri := "tcp:" + net.JoinHostPort(listenHost, strconv.Itoa(port))
	if err := d.qmpRun(ctx, v, "migrate-incoming", map[string]string{"uri": uri}, nil); err != nil {
		return "", fmt.Errorf("vm %s: listen for the migration: %w", spec.ID, err)
	}
	return uri, nil
}

// freePort asks the kernel for a free port on host. QEMU binds it right
// after; the gap is short and a collision fails loudly.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// MigrateOut implements driver.LiveMigrator.
func (d *Driver) MigrateOut(ctx context.Context, id, uri string, opts driver.MigrateOptions) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	d.refresh(v)
	if v.st.PID == 0 {
		return errs.Conflict("vm %s is not running", id)
	}
	params := map[string]any{}
	if opts.MaxDowntime > 0 {
		params["downtime-limit"] = opts.MaxDowntime.Milliseconds()
	}
	if opts.Bandwidth > 0 {
		params["max-bandwidth"] = opts.Bandwidth
	}
	if len(params) > 0 {
		if err := d.qmpRun(ctx, v, "migrate-set-parameters", params, nil); err != nil {
			return err
		}
	}
	return d.qmpRun(ctx, v, "migrate", map[string]string{"uri": uri}, nil)
}

// queryMigrate is the part of QMP's MigrationInfo we read.
type queryMigrate struct {
	Status string `json:"status"`
	RAM    *struct {
		Transferred      int64   `json:"transferred"`
		Remaining        int64   `json:"remaining"`
		Total            int64   `json:"total"`
		DirtyPagesRate   int64   `json:"dirty-pages-rate"`
		Mbps             float64 `json:"mbps"`
		DirtySyncCount   int     `json:"dirty-sync-count"`
		PageSize         int64   `json:"page-size"`
		PostcopyRequests int64   `json:"postcopy-requests"`
	} `json:"ram"`
	ExpectedDowntime int64  `json:"expected-downtime"`
	Downtime         int64  `json:"downtime"`
	TotalTime        int64  `json:"total-time"`
	ErrorDesc        string `json:"error-desc"`
}

// MigrationStatus implements driver.LiveMigrator.
func (d *Driver) MigrationStatus(ctx context.Context, id string) (driver.MigrationStatus, error) {
	v, err := d.get(id)
	if err != nil {
		return driver.MigrationStatus{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var q queryMigrate
	if err := d.qmpRun(ctx, v, "query-migrate", nil, &q); err != nil {
		return driver.MigrationStatus{}, err
	}
	st := driver.MigrationStatus{Strategy: "shared-storage/pre-copy", Error: q.ErrorDesc,
		ExpectedDowntime: time.Duration(q.ExpectedDowntime) * time.Millisecond,
		Downtime:         time.Duration(q.Downtime) * time.Millisecond,
		TotalTime:        time.Duration(q.TotalTime) * time.Millisecond}
	switch q.Status {
	case "completed":
		st.Status = driver.MigrationCompleted
	case "failed":
		st.Status = driver.MigrationFailed
	case "cancelled", "cancelling":
		st.Status = driver.MigrationCancelled
	case "":
		st.Status = driver.MigrationNone
	default: // setup, active, pre-switchover, device, postcopy-*
		st.Status = driver.MigrationActive
	}
	if r := q.RAM; r != nil {
		st.MemoryTotal, st.MemoryTransferred, st.MemoryRemaining = r.Total, r.Transferred, r.Remaining
		st.DirtyRate = r.DirtyPagesRate * max(r.PageSize, 4096)
		st.Throughput = r.Mbps * 1e6 / 8
		st.Pass = r.DirtySyncCount
	}
	return st, nil
}

// CancelMigration implements driver.LiveMigrator.
func (d *Driver) CancelMigration(ctx context.Context, id string) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return d.qmpRun(ctx, v, "migrate_cancel", nil, nil)
}

// CompleteIncoming implements driver.LiveMigrator: QEMU resumes the guest
// by itself when the incoming migration completes; this waits for it.
func (d *Driver) CompleteIncoming(ctx context.Context, id string, timeout time.Duration) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		var st struct {
			Status  string `json:"status"`
			Running bool   `json:"running"`
		}
		err := d.qmpRun(ctx, v, "query-status", nil, &st)
		v.mu.Unlock()
		if err == nil && st.Running {
			return nil
		}
		if err == nil && st.Status != "inmigrate" && st.Status != "paused" && st.Status != "prelaunch" {
			return fmt.Errorf("vm %s: incoming migration ended in state %s", id, st.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vm %s: not running %s after the migration (state %q, %v)", id, timeout, st.Status, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Release implements driver.LiveMigrator.
func (d *Driver) Release(ctx context.Context, id string) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := d.stop(ctx, v, driver.StopOptions{Force: true}); err != nil {
		return err
	}
	if err := removeAll(v.dir); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.vms, id)
	d.mu.Unlock()
	d.log.Info("vm released; disk kept", "vm", v.st.Launch.Spec.Name)
	return nil
}

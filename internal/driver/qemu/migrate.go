package qemu

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/converge"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/safe"
)

var _ driver.LiveMigrator = (*Driver)(nil)

// PrepareIncoming implements driver.LiveMigrator: the VM is defined as on
// any host, then QEMU starts with "-incoming defer" and is told where to
// listen. On shared storage its disk images open inactive, so the source
// keeps them until the switch-over. A local disk is created empty (a full
// copy arrives, so it needs no base image) and exported over NBD for the
// source to mirror into; the guest then starts paused (-S) and resumes
// only in SwitchOver, once the source has finished the mirror.
func (d *Driver) PrepareIncoming(ctx context.Context, spec driver.VMSpec, listenHost string, opts driver.MigrateOptions) (driver.Incoming, error) {
	block := spec.Disk != nil && !spec.Disk.Shared
	if block && opts.PostCopy {
		return driver.Incoming{}, errs.NotSupported("post-copy with a block copy of the disk is not supported; use pre-copy or a shared disk")
	}
	if block {
		disk := *spec.Disk
		disk.Backing = ""
		spec.Disk = &disk
	}
	if err := d.Create(ctx, spec); err != nil {
		return driver.Incoming{}, err
	}
	v, err := d.get(spec.ID)
	if err != nil {
		return driver.Incoming{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if alive(v.st.PID, spec.ID) {
		return driver.Incoming{}, errs.Conflict("vm %s already runs on this host", spec.ID)
	}
	v.st.Launch.Incoming, v.st.Launch.Paused = true, block
	// Recorded before the launch, for an agent that dies before start
	// records the process (adopt): this QEMU's guest has not run here.
	v.st.Incoming = driver.IncomingWaiting
	if err := writeState(v.dir, v.st); err != nil {
		return driver.Incoming{}, fmt.Errorf("vm %s: %w", spec.ID, err)
	}
	err = d.start(ctx, v)
	v.st.Launch.Incoming, v.st.Launch.Paused = false, false // a later plain start boots normally
	if err != nil {
		return driver.Incoming{}, err
	}
	_ = writeState(v.dir, v.st)
	in := driver.Incoming{}
	port, err := freePort(listenHost)
	if err != nil {
		return in, err
	}
	in.URI = "tcp:" + net.JoinHostPort(listenHost, strconv.Itoa(port))
	in.PostCopyPreempt = opts.PostCopy && d.preempt()
	if err := d.setCapabilities(ctx, v, opts, in.PostCopyPreempt); err != nil {
		return in, err
	}
	if err := d.migrationTLS(ctx, v, opts.TLS, "server"); err != nil {
		return in, err
	}
	if len(spec.NICs) > 0 {
		if err := d.qmpRun(ctx, v, "migrate-set-parameters", announceParams("announce-"), nil); err != nil {
			return in, fmt.Errorf("vm %s: set the nic announcements: %w", spec.ID, err)
		}
	}
	if err := d.qmpRun(ctx, v, "migrate-incoming", map[string]string{"uri": in.URI}, nil); err != nil {
		return in, fmt.Errorf("vm %s: listen for the migration: %w", spec.ID, err)
	}
	v.arrivalMon = v.mon // the guest can start only after this command
	// Page requests leave at once (nodelay.go): the connections QEMU
	// accepts inherit the option from the listening socket.
	if n, err := setNoDelay(v.st.PID, func(s tcpSocket) bool { return s.listening && s.localPort == port }); err != nil || n == 0 {
		d.log.Warn("could not turn off Nagle's algorithm on the migration socket: post-copy page requests may wait for delayed ACKs",
			"vm", spec.Name, "sockets", n, "err", err)
	}

	if block {
		nbdPort, err := freePort(listenHost)
		if err != nil {
			return in, err
		}
		addr := map[string]any{"type": "inet", "data": map[string]string{"host": listenHost, "port": strconv.Itoa(nbdPort)}}
		nbd := map[string]any{"addr": addr}
		if opts.TLS != nil {
			nbd["tls-creds"] = migTLSID
		}
		if err := d.qmpRun(ctx, v, "nbd-server-start", nbd, nil); err != nil {
			return in, fmt.Errorf("vm %s: start the nbd server: %w", spec.ID, err)
		}
		exp := map[string]any{"type": "nbd", "id": "disk0-export", "node-name": "disk0", "writable": true, "name": "disk0"}
		if err := d.qmpRun(ctx, v, "block-export-add", exp, nil); err != nil {
			return in, fmt.Errorf("vm %s: export the disk: %w", spec.ID, err)
		}
		in.NBD = net.JoinHostPort(listenHost, strconv.Itoa(nbdPort))
	}
	return in, nil
}

// uriPort is the port of a tcp:HOST:PORT migration URI, or 0.
func uriPort(uri string) int {
	_, port, err := net.SplitHostPort(strings.TrimPrefix(uri, "tcp:"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
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

// MigrateOut implements driver.LiveMigrator. With a block copy the disk
// is mirrored first (blockdev-mirror into the destination's NBD export);
// memory moves once the mirror is in sync, and the mirror keeps the disks
// in sync until the switch-over, so disk and memory switch together.
func (d *Driver) MigrateOut(ctx context.Context, id string, to driver.Incoming, opts driver.MigrateOptions) error {
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
	capBytesPerS := int64(qemuMaxBandwidthBytesPerS)
	if opts.BandwidthBytesPerS > 0 {
		capBytesPerS = opts.BandwidthBytesPerS
	}
	block := to.NBD != ""
	est := v.estimate()
	est.Resident = d.residentRAM(ctx, v)
	eng := converge.New(engineConfig(v, opts, capBytesPerS, block), est, nil)
	set := eng.Setup()
	// QMP's bandwidths are in bytes/s, as the cap is. The cap holds in
	// post-copy too: QEMU leaves max-postcopy-bandwidth unlimited unless
	// it is set.
	params := map[string]any{"downtime-limit": set.MaxDowntime.Milliseconds(), "max-bandwidth": capBytesPerS, "max-postcopy-bandwidth": capBytesPerS,
		"cpu-throttle-initial": set.ThrottleInitial, "cpu-throttle-increment": set.ThrottleIncrement,
		"cpu-throttle-tailslow": set.TailSlow}
	if err := d.qmpRun(ctx, v, "migrate-set-parameters", params, nil); err != nil {
		return err
	}
	if err := d.migrationTLS(ctx, v, opts.TLS, "client"); err != nil {
		return err
	}
	caps := driver.MigrateOptions{PostCopy: set.PostCopy, AutoConverge: set.AutoConverge || opts.AutoConverge}
	// Post-copy page requests on their own channel, where the destination
	// asked for it and this QEMU has it.
	preempt := set.PostCopy && to.PostCopyPreempt && d.preempt()
	if err := d.setCapabilities(ctx, v, caps, preempt); err != nil {
		return err
	}
	v.out = &outgoing{block: block, postCopy: set.PostCopy, eng: eng, bandwidthBytesPerS: float64(capBytesPerS), destPort: uriPort(to.URI), noDelay: map[int]bool{}, channels: 1}
	if preempt {
		v.out.channels = 2
	}
	out := v.out
	safe.Go(d.log, "migration supervisor of vm "+id, func() { d.supervise(v, out) })
	if !v.out.block {
		v.out.started = true
		return d.qmpRun(ctx, v, "migrate", map[string]string{"uri": to.URI}, nil)
	}
	host, port, err := net.SplitHostPort(to.NBD)
	if err != nil {
		return errs.Invalid("bad nbd address %q", to.NBD)
	}
	target := map[string]any{"driver": "nbd", "node-name": mirrorTarget, "export": "disk0",
		"server": map[string]string{"type": "inet", "host": host, "port": port}}
	if opts.TLS != nil {
		target["tls-creds"], target["tls-hostname"] = migTLSID, opts.TLS.PeerName
	}
	if err := d.qmpRun(ctx, v, "blockdev-add", target, nil); err != nil {
		return fmt.Errorf("vm %s: connect to the destination's disk: %w", id, err)
	}
	mirror := map[string]any{"job-id": mirrorJob, "device": "disk0", "target": mirrorTarget, "sync": "full"}
	if opts.BandwidthBytesPerS > 0 {
		mirror["speed"] = opts.BandwidthBytesPerS // bytes/s
	}
	if err := d.qmpRun(ctx, v, "blockdev-mirror", mirror, nil); err != nil {
		_ = d.qmpRun(ctx, v, "blockdev-del", map[string]string{"node-name": mirrorTarget}, nil)
		return fmt.Errorf("vm %s: start the disk mirror: %w", id, err)
	}
	safe.Go(d.log, "disk mirror watch of vm "+id, func() { d.migrateWhenMirrored(v, out, to.URI) })
	return nil
}

// migTLSID names the TLS credentials object of a migration.
const migTLSID = "mig-tls"

// migrationTLS sets up, or turns off, the encryption of v's next
// migration (v.mu held): QEMU keeps its migration parameters from one
// migration to the next, so a migration without TLS clears them. The
// credentials object is made anew each time, from the files as they are
// now (a host that joined again has new ones); endpoint is server on the
// destination, client on the source.
func (d *Driver) migrationTLS(ctx context.Context, v *vm, t *driver.MigrationTLS, endpoint string) error {
	id := v.st.Launch.Spec.ID
	if t == nil {
		if err := d.qmpRun(ctx, v, "migrate-set-parameters", map[string]any{"tls-creds": "", "tls-hostname": ""}, nil); err != nil {
			return fmt.Errorf("vm %s: clear the migration's tls: %w", id, err)
		}
		return nil
	}
	if endpoint == "client" && t.PeerName == "" {
		return fmt.Errorf("vm %s: an encrypted migration needs the destination's name, to check its certificate", id)
	}
	_ = d.qmpRun(ctx, v, "object-del", map[string]string{"id": migTLSID}, nil) // left from an earlier migration, or none
	dir, done, err := d.credsForQEMU(t.Dir)
	if err != nil {
		return fmt.Errorf("vm %s: %w", id, err)
	}
	obj := map[string]any{"qom-type": "tls-creds-x509", "id": migTLSID, "dir": dir, "endpoint": endpoint, "verify-peer": true}
	err = d.qmpRun(ctx, v, "object-add", obj, nil)
	done()
	if err != nil {
		return fmt.Errorf("vm %s: load the migration's tls credentials from %s: %w", id, t.Dir, err)
	}
	params := map[string]any{"tls-creds": migTLSID, "tls-hostname": ""}
	if endpoint == "client" {
		params["tls-hostname"] = t.PeerName
	}
	if err := d.qmpRun(ctx, v, "migrate-set-parameters", params, nil); err != nil {
		return fmt.Errorf("vm %s: encrypt the migration: %w", id, err)
	}
	return nil
}

// Names of the block mirror's job and target node on the source.
const (
	mirrorJob    = "mirror0"
	mirrorTarget = "mirror-target"
)

// setCapabilities sets every migration capability godwit manages, on or
// off: a QEMU keeps them from its previous migration (a VM that arrived
// with post-copy allowed would otherwise leave with it, towards a
// destination that did not agree to it, and fail).
func (d *Driver) setCapabilities(ctx context.Context, v *vm, opts driver.MigrateOptions, preempt bool) error {
	caps := []map[string]any{
		{"capability": "events", "state": true}, // MIGRATION events: MigrationChanged
		{"capability": "postcopy-ram", "state": opts.PostCopy},
		{"capability": "auto-converge", "state": opts.AutoConverge},
	}
	if d.preempt() {
		caps = append(caps, map[string]any{"capability": "postcopy-preempt", "state": preempt && opts.PostCopy})
	}
	return d.qmpRun(ctx, v, "migrate-set-capabilities", map[string]any{"capabilities": caps}, nil)
}

// preempt says whether this QEMU sends post-copy page requests on a
// channel of their own (the postcopy-preempt capability, stable since
// QEMU 8.0): a vCPU faulting on a page no longer waits for the pages of
// the background stream queued before it. Config.NoPostCopyPreempt turns
// it off, to measure it.
func (d *Driver) preempt() bool {
	return !d.cfg.NoPostCopyPreempt && driver.QEMUAtLeast(d.version, "8.0")
}

// qemuMaxBandwidthBytesPerS is QEMU's default max-bandwidth, 128 MiB/s
// (about 134 MB/s), set when a migration sets no cap: parameters outlive
// the migration that set them.
const qemuMaxBandwidthBytesPerS = 128 << 20

// outgoing is the source side of a migration in flight.
type outgoing struct {
	block              bool
	postCopy           bool // post-copy allowed
	eng                *converge.Engine
	throttled          bool         // QEMU throttled the vCPUs
	paused             bool         // the guest was paused for the final copy
	over               bool         // QEMU reported the migration ended
	switched           bool         // switched to post-copy
	started            bool         // memory migration started
	cancelled          bool         // CancelMigration was called
	err                string       // why it failed before memory moved
	bandwidthBytesPerS float64      // the cap
	pace               pace         // post-copy pacing (converge.go)
	destPort           int          // the destination's migration port
	noDelay            map[int]bool // QEMU's fds to it with TCP_NODELAY set (nodelay.go)
	channels           int          // connections QEMU opens to it: main, and preempt
}

// blockJob is the part of query-block-jobs we read.
type blockJob struct {
	Device string `json:"device"`
	Len    int64  `json:"len"`
	Offset int64  `json:"offset"`
	Ready  bool   `json:"ready"`
	Status string `json:"status"`
}

func (d *Driver) mirrorJob(ctx context.Context, v *vm) (*blockJob, error) {
	var jobs []blockJob
	if err := d.qmpRun(ctx, v, "query-block-jobs", nil, &jobs); err != nil {
		return nil, err
	}
	for i := range jobs {
		if jobs[i].Device == mirrorJob {
			return &jobs[i], nil
		}
	}
	return nil, nil
}

// migrateWhenMirrored starts the memory migration once the mirror is in
// sync (BLOCK_JOB_READY), or records why it never got there.
func (d *Driver) migrateWhenMirrored(v *vm, out *outgoing, uri string) {
	for {
		time.Sleep(100 * time.Millisecond)
		if d.mirrorRound(v, out, uri) {
			return
		}
	}
}

// mirrorRound is one look at the mirror, under v.mu (released even if it
// panics); it reports whether the wait is over.
func (d *Driver) mirrorRound(v *vm, out *outgoing, uri string) (over bool) {
	ctx := context.Background()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.out != out || out.cancelled {
		return true
	}
	job, err := d.mirrorJob(ctx, v)
	switch {
	case err != nil:
		out.err = "disk mirror: " + err.Error()
	case job == nil:
		out.err = "the disk mirror ended before it was in sync"
	case job.Ready:
		if err := d.qmpRun(ctx, v, "migrate", map[string]string{"uri": uri}, nil); err != nil {
			out.err = "start the memory migration: " + err.Error()
		} else {
			out.started = true
		}
	default:
		return false
	}
	return true
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
		Duplicate        int64   `json:"duplicate"` // zero pages
	} `json:"ram"`
	CPUThrottle      int    `json:"cpu-throttle-percentage"`
	ExpectedDowntime int64  `json:"expected-downtime"`
	Downtime         int64  `json:"downtime"`
	TotalTime        int64  `json:"total-time"`
	ErrorDesc        string `json:"error-desc"`
}

// MigrationChanged implements driver.MigrationNotifier, from QEMU's
// MIGRATION events (the events capability, set with the others).
func (d *Driver) MigrationChanged(ctx context.Context, id string) (<-chan struct{}, error) {
	v, err := d.get(id)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// A QEMU that is gone has nothing more to say, and dialling its QMP
	// would hold v.mu for connectTimeout.
	d.refresh(v)
	if v.st.PID == 0 {
		return nil, errs.Conflict("vm %s is not running", id)
	}
	if err := d.connect(ctx, v); err != nil {
		return nil, fmt.Errorf("vm %s: %w", id, err)
	}
	return v.mon.migrationChanged(), nil
}

// MigrationStatus implements driver.LiveMigrator. With a block copy it
// reports the mirror's progress until memory moves, and reports completed
// only once the mirror, too, has finished.
func (d *Driver) MigrationStatus(ctx context.Context, id string) (driver.MigrationStatus, error) {
	v, err := d.get(id)
	if err != nil {
		return driver.MigrationStatus{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	out := v.out
	st := driver.MigrationStatus{Strategy: strategy(out)}
	if out != nil && out.block {
		job, err := d.mirrorJob(ctx, v)
		if err != nil {
			return st, err
		}
		if job != nil {
			st.DiskTotal, st.DiskTransferred = job.Len, job.Offset
		}
		switch {
		case out.err != "":
			st.Status, st.Error = driver.MigrationFailed, out.err
			return st, nil
		case out.cancelled:
			st.Status = driver.MigrationCancelled
			return st, nil
		case !out.started:
			st.Status = driver.MigrationActive
			return st, nil
		}
	}
	var q queryMigrate
	if err := d.qmpRun(ctx, v, "query-migrate", nil, &q); err != nil {
		return driver.MigrationStatus{}, err
	}
	if out != nil && (q.Status == "completed" || q.Status == "failed" || q.Status == "cancelled") {
		out.over = true // the engine's supervisor and the sampler see it too
	}
	st.Error = q.ErrorDesc
	st.Throttle = q.CPUThrottle
	if out != nil && out.eng != nil {
		rep := out.eng.Report()
		st.Convergence = &rep
	}
	st.ExpectedDowntime = time.Duration(q.ExpectedDowntime) * time.Millisecond
	st.Downtime = time.Duration(q.Downtime) * time.Millisecond
	st.TotalTime = time.Duration(q.TotalTime) * time.Millisecond
	switch q.Status {
	case "completed":
		st.Status = driver.MigrationCompleted
	case "failed":
		st.Status = driver.MigrationFailed
	case "cancelled", "cancelling":
		st.Status = driver.MigrationCancelled
		if out != nil && out.err != "" {
			st.Status, st.Error = driver.MigrationFailed, out.err // the engine's completion timeout
		}
	case "":
		st.Status = driver.MigrationNone
	case "postcopy-paused", "postcopy-recover-setup", "postcopy-recover":
		st.Status = driver.MigrationPostCopyPaused
	default: // setup, active, pre-switchover, device, postcopy-active
		st.Status = driver.MigrationActive
	}
	if out != nil && strings.HasPrefix(q.Status, "postcopy-") && !out.switched {
		out.switched = true // QEMU says so, whoever asked for the switch
		st.Strategy = strategy(out)
	}
	if r := q.RAM; r != nil {
		st.MemoryTotal, st.MemoryTransferred, st.MemoryRemaining = r.Total, r.Transferred, r.Remaining
		st.DirtyRate = r.DirtyPagesRate * max(r.PageSize, 4096)
		st.Throughput = r.Mbps * 1e6 / 8
		st.Pass = r.DirtySyncCount
		st.MemoryZero = r.Duplicate * max(r.PageSize, 4096)
	}
	if st.Status == driver.MigrationCompleted && out != nil && out.block {
		// The guest is paused: end the mirror without pivoting (the
		// destination's copy is complete), then report completion.
		if err := d.finishMirror(ctx, v); err != nil {
			st.Status, st.Error = driver.MigrationFailed, "finish the disk mirror: "+err.Error()
		}
	}
	return st, nil
}

// strategy names what the driver runs for an outgoing migration.
func strategy(out *outgoing) api.Strategy {
	s := api.StrategyLiveShared
	if out == nil {
		return s
	}
	if out.block {
		s = api.StrategyLiveBlockCopy
	}
	if out.throttled {
		s = s.With(api.TechniqueAutoConverge)
	}
	if out.switched {
		s = s.With(api.TechniquePostCopy)
	}
	return s
}

// finishMirror cancels a ready mirror — which, once in sync, completes it
// without switching the source to the target — and waits for it to end.
func (d *Driver) finishMirror(ctx context.Context, v *vm) error {
	job, err := d.mirrorJob(ctx, v)
	if err != nil || job == nil {
		return err
	}
	if err := d.qmpRun(ctx, v, "block-job-cancel", map[string]string{"device": mirrorJob}, nil); err != nil {
		return err
	}
	for i := 0; i < 600; i++ {
		if job, err = d.mirrorJob(ctx, v); err != nil || job == nil {
			_ = d.qmpRun(ctx, v, "blockdev-del", map[string]string{"node-name": mirrorTarget}, nil)
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the mirror did not end within 30s")
}

// CancelMigration implements driver.LiveMigrator.
func (d *Driver) CancelMigration(ctx context.Context, id string) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.out != nil && v.out.switched {
		// The guest runs on the destination; the source's memory is stale.
		return errs.Conflict("vm %s switched to post-copy: it runs on the destination and the migration can only finish", id)
	}
	if v.out != nil && v.out.block {
		v.out.cancelled = true
		_ = d.qmpRun(ctx, v, "block-job-cancel", map[string]any{"device": mirrorJob, "force": true}, nil)
		for i := 0; i < 100; i++ {
			if job, err := d.mirrorJob(ctx, v); err != nil || job == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = d.qmpRun(ctx, v, "blockdev-del", map[string]string{"node-name": mirrorTarget}, nil)
	}
	if err := d.qmpRun(ctx, v, "migrate_cancel", nil, nil); err != nil {
		return err
	}
	if v.out != nil && v.out.paused {
		// Paused for the final copy (force-complete or the engine's last
		// resort): the guest stays here, so it runs again once QEMU has
		// left the migration.
		for i := 0; i < 100; i++ {
			var q queryMigrate
			if err := d.qmpRun(ctx, v, "query-migrate", nil, &q); err != nil || (q.Status != "active" && q.Status != "cancelling") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := d.qmpRun(ctx, v, "cont", nil, nil); err != nil {
			return fmt.Errorf("resume the guest after the cancel: %w", err)
		}
		v.out.paused = false
	}
	return nil
}

// SwitchOver implements driver.LiveMigrator: QEMU resumes the guest
// by itself when the incoming migration completes; this waits for it.
func (d *Driver) SwitchOver(ctx context.Context, id string, timeout time.Duration) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		d.refresh(v)
		if v.st.PID == 0 {
			v.mu.Unlock()
			// A failed load ends QEMU; Status says whether the guest ran.
			return fmt.Errorf("vm %s: its qemu exited during the incoming migration (see its qemu.log)", id)
		}
		var st runStatus
		err := d.qmpRun(ctx, v, "query-status", nil, &st)
		if err == nil && st.Running {
			d.setIncoming(v, driver.IncomingNone)
		}
		if err == nil && st.Status == "guest-panicked" {
			d.arrivedPanicked(ctx, v) // arrived: the panic is the VM's state, not the move's failure
			v.mu.Unlock()
			return nil
		}
		v.mu.Unlock()
		if err == nil && st.Running {
			return nil
		}
		if err == nil && st.Status != "inmigrate" {
			// Started paused (-S) for a block copy: resume once the
			// incoming migration is complete.
			var q queryMigrate
			resumed := false
			v.mu.Lock()
			if d.qmpRun(ctx, v, "query-migrate", nil, &q) == nil && q.Status == "completed" {
				_ = d.qmpRun(ctx, v, "nbd-server-stop", nil, nil)
				err, resumed = d.resumeArrived(ctx, v), true
			}
			v.mu.Unlock()
			if err != nil {
				return fmt.Errorf("vm %s: resume after the migration: %w", id, err)
			}
			if resumed {
				continue
			}
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
	if err := d.unplug(ctx, v.st.Launch.Spec); err != nil {
		return err
	}
	if err := removeAll(v.dir); err != nil {
		return err
	}
	v.gone = true
	d.mu.Lock()
	delete(d.vms, id)
	d.mu.Unlock()
	d.log.Info("vm released; disk kept", "vm", v.st.Launch.Spec.Name)
	return nil
}

var _ driver.ForceCompleter = (*Driver)(nil)

// ForceComplete implements driver.ForceCompleter: with post-copy allowed
// (the capability was set on both ends before the start) it switches to
// post-copy, so the guest runs on at the destination; otherwise it pauses
// the guest: with nothing dirtied any more, pre-copy finishes at the
// bandwidth, and the destination resumes the guest (SwitchOver).
func (d *Driver) ForceComplete(ctx context.Context, id string) (string, error) {
	v, err := d.get(id)
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.out == nil || (v.out.block && !v.out.started) {
		return "", errs.Conflict("vm %s has no memory migration to complete yet", id)
	}
	if v.out.postCopy {
		if err := d.qmpRun(ctx, v, "migrate-start-postcopy", nil, nil); err != nil {
			return "", err
		}
		v.out.switched = true
		return "switched to post-copy: the guest runs on the destination while its memory follows", nil
	}
	if err := d.qmpRun(ctx, v, "stop", nil, nil); err != nil {
		return "", err
	}
	v.out.paused = true
	return "paused the guest for the final copy", nil
}

package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/lease"
)

// Lease watching. The controller reads the hosts' leases from the shared
// pool itself, never from the hosts' heartbeats: a host cut off from the
// controller but not from the storage goes on renewing its lease and
// writing its disks, and only the pool shows it.
const (
	leasePoll = 500 * time.Millisecond
	// leaseMargin is waited beyond a lease's TTL: the watchdog's polling
	// and a SIGKILL taking effect fit well inside it.
	leaseMargin = time.Second
)

// leaseWatch is the controller's view of the pool's leases.
type leaseWatch struct {
	dir     string
	tracker *lease.Tracker

	mu     sync.Mutex
	poolID string // the pool's identity marker, once an agent wrote it
}

func newLeaseWatch(dir string, now func() time.Time) *leaseWatch {
	if dir == "" {
		return nil
	}
	return &leaseWatch{dir: dir, tracker: lease.NewTracker(leasePoll, leaseMargin, now)}
}

// run reads the pool's leases every leasePoll until ctx ends. A read that
// hangs (a pool that stopped answering) only delays the next: the
// tracker then gives no verdict, never a false expiry.
func (w *leaseWatch) run(ctx context.Context, log interface{ Warn(string, ...any) }) {
	tick := time.NewTicker(leasePoll)
	defer tick.Stop()
	lastErr := ""
	for {
		if b, err := os.ReadFile(filepath.Join(w.dir, ".godwit-pool-id")); err == nil {
			w.mu.Lock()
			w.poolID = strings.TrimSpace(string(b))
			w.mu.Unlock()
		}
		leases, err := lease.ReadAll(w.dir)
		if leases != nil {
			w.tracker.Observe(leases)
		}
		if msg := fmt.Sprint(err); err != nil && msg != lastErr {
			log.Warn("read host leases on the shared pool", "dir", w.dir, "err", err)
			lastErr = msg
		} else if err == nil {
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// hostLease is the verdict on h's lease, and whether there is one to
// judge: the controller watches a pool and h reports the same one.
func (c *Service) hostLease(h api.Host) (lease.Verdict, bool) {
	w := c.leases
	if w == nil {
		return lease.Verdict{}, false
	}
	w.mu.Lock()
	poolID := w.poolID
	w.mu.Unlock()
	for _, p := range h.Pools {
		if p.Kind == api.PoolShared && (p.ID == "" || p.ID == poolID) {
			return w.tracker.Verdict(h.Name), true
		}
	}
	return lease.Verdict{}, false
}

// withLeases fills in the lease of each host the controller can judge.
func (c *Service) withLeases(hosts []api.Host) {
	for i := range hosts {
		v, ok := c.hostLease(hosts[i])
		if !ok {
			continue
		}
		hosts[i].Lease = &api.HostLease{State: string(v.State), Seq: v.Lease.Seq, StillMS: v.Still.Milliseconds(),
			TTLMS: v.Lease.TTLMS, ExpiresInMS: v.Left.Milliseconds()}
	}
}

// FencingEvidence returns the sentence that proves a host can no longer
// write its VMs' disks — its lease on the shared pool expired, as this
// controller saw it — or "" when there is no such proof.
func (c *Service) FencingEvidence(h api.Host) string {
	v, ok := c.hostLease(h)
	if !ok || v.State != lease.Expired {
		return ""
	}
	return fmt.Sprintf("the lease of host %s on the shared pool stood still at seq %d for %s, longer than its TTL %s plus a %s margin: its watchdog has killed every VM of the host on the shared pool",
		h.Name, v.Lease.Seq, v.Still.Round(100*time.Millisecond), v.Lease.TTL(), leaseMargin)
}

// leaseRefusal says why a down host's lease forbids evacuating it yet, or
// "" when it does not. confirmed is the operator's --host-is-down, which
// may stand in for an expiry still to come, never for a lease that is
// being renewed: that host is alive.
func (c *Service) leaseRefusal(h api.Host, confirmed bool) (why string, judged bool) {
	v, ok := c.hostLease(h)
	if !ok {
		return "", false
	}
	silent := time.Since(h.LastHeartbeat).Round(time.Second)
	switch {
	case v.State == lease.Expired:
		return "", true
	case v.State == lease.Renewing:
		return fmt.Sprintf("host %s stopped sending heartbeats %s ago, but its lease on the shared pool was renewed less than %s ago (seq %d): the host may be alive and writing its VMs' disks, perhaps behind a network split. Evacuate is refused, even with --host-is-down; if renewals have stopped, the lease expires in %s: retry then",
			h.Name, silent, roundUp(v.Still+leasePoll), v.Lease.Seq, roundUp(v.Left)), true
	case confirmed:
		return "", true
	case v.State == lease.Lapsing:
		return fmt.Sprintf("host %s stopped sending heartbeats %s ago and has not renewed its lease on the shared pool for %s; its watchdog fences it before the lease expires: retry in %s, or now with --host-is-down if you know it is powered off",
			h.Name, silent, v.Still.Round(100*time.Millisecond), roundUp(v.Left)), true
	}
	return fmt.Sprintf("host %s stopped sending heartbeats %s ago, and the controller cannot read its lease on the shared pool (%s): nothing proves it is dead. Make sure it is powered off or fenced, then confirm with --host-is-down",
		h.Name, silent, lease.Path(c.leases.dir, h.Name)), true
}

// roundUp rounds a wait up to a tenth of a second, so "retry in" never
// says 0s before the wait is over.
func roundUp(d time.Duration) time.Duration {
	const q = 100 * time.Millisecond
	return (d + q - 1) / q * q
}

// NotProvenDown says why a host cannot be treated as dead, or "" when it
// can. Heartbeats stopping is not enough: a host cut off from the
// controller may still run its VMs and write their disks. Proof is its
// lease on the shared pool expiring (FencingEvidence) or the operator's
// word; a lease still being renewed overrules the operator.
func (c *Service) NotProvenDown(h api.Host, confirmed bool) string {
	if h.State == api.HostUp {
		return fmt.Sprintf("host %s is up (last heartbeat %s ago): evacuate rebuilds the VMs of a dead host; to move VMs off a running host use: godwit drain %s",
			h.Name, time.Since(h.LastHeartbeat).Round(time.Second), h.Name)
	}
	if why, judged := c.leaseRefusal(h, confirmed); judged {
		return why
	}
	if !confirmed {
		return fmt.Sprintf("host %s stopped sending heartbeats %s ago, but nothing proves it is dead: it may still run its VMs behind a network split. Make sure it is powered off or fenced, then confirm with --host-is-down",
			h.Name, time.Since(h.LastHeartbeat).Round(time.Second))
	}
	return ""
}

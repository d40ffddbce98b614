package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godwit/godwit/internal/lease"
	"github.com/godwit/godwit/internal/safe"
)

// Lease defaults. The TTL is what the controller waits, after the lease
// stood still, before it takes the host for fenced; the watchdog fences at
// 70% of it, so the kill lands well inside the TTL even with the
// watchdog's polling and a slow kill.
const (
	defaultLeaseRenew = 2 * time.Second
	defaultLeaseTTL   = 10 * time.Second
)

// leaseOn reports whether this agent keeps a lease: it has a shared pool
// and leases are not turned off.
func (c *Config) leaseOn() bool { return c.SharedDir != "" && !c.NoLease }

func (c *Config) leaseDefaults() error {
	if !c.leaseOn() {
		return nil
	}
	if c.LeaseRenew <= 0 {
		c.LeaseRenew = defaultLeaseRenew
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = defaultLeaseTTL
	}
	if c.FenceAfter <= 0 {
		c.FenceAfter = c.LeaseTTL * 7 / 10
	}
	switch {
	case c.FenceAfter >= c.LeaseTTL:
		return fmt.Errorf("agent: --fence-after (%s) must be shorter than --lease-ttl (%s): the host must be fenced before its lease expires", c.FenceAfter, c.LeaseTTL)
	case c.FenceAfter < 2*c.LeaseRenew:
		return fmt.Errorf("agent: --fence-after (%s) must be at least two renewals (--lease-renew %s), or one slow write fences the host", c.FenceAfter, c.LeaseRenew)
	}
	return nil
}

// fenceDir holds what the agent and its watchdog share: the renewal the
// agent last made, the watchdog's pid and lock, the record of fencings.
func fenceDir(stateDir string) string { return filepath.Join(stateDir, "fence") }

// renewal is what the agent tells its watchdog after each lease renewal,
// in <state>/fence/renewed: on local disk, so that the watchdog never
// blocks on a shared pool that stopped answering.
type renewal struct {
	Seq uint64 `json:"seq"`
	PID int    `json:"pid"`
	// Stopping: the agent shut down cleanly. The watchdog leaves as soon
	// as no QEMU of the host runs on the shared pool; while one does, it
	// keeps counting, and fences it unless an agent comes back in time.
	Stopping bool `json:"stopping,omitempty"`
}

func writeRenewal(stateDir string, r renewal) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := filepath.Join(fenceDir(stateDir), "renewed")
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

func readRenewal(stateDir string) (renewal, error) {
	var r renewal
	b, err := os.ReadFile(filepath.Join(fenceDir(stateDir), "renewed"))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// keepLease renews the host's lease every LeaseRenew until ctx ends,
// tells the watchdog after each renewal that got to the pool, and keeps a
// watchdog running. It returns after telling the watchdog it stops.
func (a *Agent) keepLease(ctx context.Context) {
	defer close(a.leaseDone)
	var seq uint64
	if l, err := lease.Read(lease.Path(a.cfg.SharedDir, a.cfg.Name)); err == nil {
		seq = l.Seq
	} else if !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("previous lease unreadable; starting a new sequence", "err", err)
	}
	a.log.Info("keeping a lease on the shared pool", "renew", a.cfg.LeaseRenew, "ttl", a.cfg.LeaseTTL, "fence_after", a.cfg.FenceAfter, "seq", seq)
	fenced := a.fenceRecords(0)
	tick := time.NewTicker(a.cfg.LeaseRenew)
	defer tick.Stop()
	var last time.Time // last renewal that reached the pool
	failing := false
	for {
		// A round that panics is logged and the next one comes on time:
		// a lease left unrenewed gets this host's VMs fenced.
		_ = safe.Run(a.log, "lease renewal", func() {
			seq++
			err := lease.Write(a.cfg.SharedDir, lease.Lease{Host: a.cfg.Name, Seq: seq, WrittenAt: time.Now().UTC(),
				RenewMS: a.cfg.LeaseRenew.Milliseconds(), TTLMS: a.cfg.LeaseTTL.Milliseconds()})
			now := time.Now()
			switch {
			case err != nil && !failing:
				a.log.Error("lease renewal failed; the watchdog fences this host's shared-pool VMs unless it succeeds again in time", "err", err, "fence_after", a.cfg.FenceAfter)
				failing = true
			case err == nil:
				if failing {
					a.log.Info("lease renewed again", "seq", seq)
					failing = false
				}
				if gap := now.Sub(last); !last.IsZero() && gap > a.cfg.FenceAfter {
					a.log.Warn("lease renewed after a gap longer than --fence-after: the watchdog has fenced this host's shared-pool VMs, and the controller may have rebuilt them elsewhere", "gap", gap.Round(time.Millisecond), "seq", seq)
				}
				last = now
				if werr := writeRenewal(a.cfg.StateDir, renewal{Seq: seq, PID: os.Getpid()}); werr != nil {
					a.log.Error("tell the watchdog about the renewal", "err", werr)
				}
			}
			if a.cfg.Watchdog != "" {
				if err := a.ensureWatchdog(); err != nil {
					a.log.Error("start the fencing watchdog", "err", err)
				}
			}
			fenced = a.fenceRecords(fenced)
		})
		select {
		case <-ctx.Done():
			if err := writeRenewal(a.cfg.StateDir, renewal{Seq: seq, PID: os.Getpid(), Stopping: true}); err != nil {
				a.log.Error("tell the watchdog the agent stops", "err", err)
			}
			return
		case <-tick.C:
		}
	}
}

// fenceRecords logs the fencings the watchdog recorded past byte offset
// seen, and returns the new offset.
func (a *Agent) fenceRecords(seen int64) int64 {
	b, err := os.ReadFile(filepath.Join(fenceDir(a.cfg.StateDir), fencedLog))
	if err != nil || int64(len(b)) <= seen {
		return seen
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b[seen:])), "\n") {
		a.log.Warn("the watchdog fenced this host: its lease was not renewed in time", "record", line)
	}
	return int64(len(b))
}

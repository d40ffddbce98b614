package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/guestlog"
)

// cluster is a running controller and its agents (a cluster.Local).
type cluster struct {
	*gcluster.Local
	log    *slog.Logger
	client *api.Client
	// net, when set, is the VMs' network with a client on it
	// (clientnet.go): every VM gets a NIC there.
	net *clientNet
}

// startCluster starts the controller and the agents of o, with the
// benchmark's settings (the qemu driver, the accelerator the run chose
// unless o names one, a 1 s heartbeat), waits until every host is up and
// imports the test guest. On failure it stops what it started.
func (b *bench) startCluster(ctx context.Context, name string, o gcluster.Options) (c *cluster, err error) {
	o.Exe, o.Driver, o.LogLevel = b.godwit, "qemu", "info"
	o.HostDownAfter, o.Heartbeat = 30*time.Second, time.Second
	o.Timeouts = gcluster.Timeouts{AgentStop: 15 * time.Second, ControllerStop: 15 * time.Second}
	o.Logger = b.log.With("cluster", name)
	if o.Accel == "" {
		o.Accel, o.AccelReason = b.accel, b.accelReason
	}
	l, err := gcluster.New(o)
	if err != nil {
		return nil, err
	}
	c = &cluster{Local: l, log: o.Logger, client: l.Client()}
	defer func() {
		if err != nil {
			c.stop()
			c = nil
		}
	}()
	if err := l.Start(ctx); err != nil {
		return c, err
	}
	return c, l.ImportGuest(ctx)
}

// consolePath is where the qemu driver on host keeps a VM's serial
// console log (internal/driver/qemu: <state>/qemu/vms/<id>/console.log).
func (c *cluster) consolePath(host, vmID string) string {
	return filepath.Join(c.StateDir(host), "qemu", "vms", vmID, "console.log")
}

// stop deletes every VM through the API (best effort, so each agent stops
// its QEMU), stops the agents and the controller by PID, and kills by PID
// any QEMU process still running under the cluster's directory.
func (c *cluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if ctrl := c.Controller(); ctrl != nil && !ctrl.Exited() {
		c.abortAll(ctx)
		if vms, err := c.client.VMs(ctx); err == nil {
			for _, vm := range vms {
				if err := c.client.DeleteVM(ctx, vm.Name); err != nil {
					c.log.Warn("delete vm at cleanup", "vm", vm.Name, "err", err)
				}
			}
		}
	}
	c.Stop()
	for _, pid := range c.KillLeftovers() {
		c.log.Warn("killed a qemu process left behind", "pid", pid)
	}
}

// guestCmdline is what the test guest reads from its kernel command line.
func guestCmdline(dirtyMiB, rateMB, hbHz int) string {
	return fmt.Sprintf("dirty_mb=%d dirty_rate_mb=%d hb_hz=%d", dirtyMiB, rateMB, hbHz)
}

// vmSpec is one benchmark VM.
type vmSpec struct {
	name      string
	memoryMiB int
	dirtyMiB  int
	rateMB    int
}

// createVMs creates VMs on host (shared pool, a small disk) and waits
// until every one prints heartbeats.
func (c *cluster) createVMs(ctx context.Context, host string, vms []vmSpec, hbHz int) error {
	for _, v := range vms {
		req := api.CreateVMRequest{Name: v.name, Image: "testguest", Pool: api.PoolShared, Host: host,
			Flavor:  api.Flavor{VCPUs: 1, MemoryMiB: v.memoryMiB, DiskMiB: 64},
			Cmdline: guestCmdline(v.dirtyMiB, v.rateMB, hbHz)}
		if c.net != nil {
			req.Networks = []api.NICRequest{{Network: benchNetwork}}
		}
		_, err := c.client.CreateVM(ctx, req)
		if err != nil {
			return fmt.Errorf("create vm %s: %w", v.name, err)
		}
	}
	for _, v := range vms {
		if err := c.waitBeating(ctx, v.name, 180*time.Second); err != nil {
			return err
		}
	}
	for _, v := range vms {
		if err := c.waitFilled(ctx, v, 180*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// waitFilled waits until a guest has filled its dirty set: until then it
// writes memory as fast as it can rather than at its rate, and a move
// started meanwhile measures a guest that is not the scenario's. Six TCG
// guests booting on two cores take tens of seconds to get there.
func (c *cluster) waitFilled(ctx context.Context, v vmSpec, d time.Duration) error {
	if v.dirtyMiB <= 0 {
		return nil
	}
	_, err := c.WaitHeartbeat(ctx, v.name, 0, d, func(hb guestlog.Heartbeat) error {
		if hb.HotMiB < int64(v.dirtyMiB) {
			return fmt.Errorf("%d of %d MiB filled", hb.HotMiB, v.dirtyMiB)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vm %s to fill its dirty set: %w", v.name, err)
	}
	return nil
}

// waitBeating waits until a VM's console shows a new heartbeat on the
// host it runs on now.
func (c *cluster) waitBeating(ctx context.Context, name string, d time.Duration) error {
	var seen int64 = -1
	_, err := c.WaitHeartbeat(ctx, name, 0, d, func(hb guestlog.Heartbeat) error {
		switch {
		case seen < 0:
			seen = hb.Counter
			return errors.New("waiting for the next heartbeat")
		case hb.Counter == seen:
			return fmt.Errorf("heartbeat stuck at %d", hb.Counter)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("heartbeats of vm %s: %w", name, err)
	}
	return nil
}

// deleteVMs deletes VMs by name, ignoring those already gone.
func (c *cluster) deleteVMs(ctx context.Context, names []string) error {
	for _, n := range names {
		if err := c.client.DeleteVM(ctx, n); err != nil && !api.IsCode(err, api.CodeNotFound) {
			return fmt.Errorf("delete vm %s: %w", n, err)
		}
	}
	return nil
}

// abortAll cancels running drains and aborts running migrations (an
// interrupted benchmark leaves them), and waits up to a minute for the
// migrations to end, so that the VMs can be deleted.
func (c *cluster) abortAll(ctx context.Context) {
	if ins, err := c.client.Intents(ctx); err == nil {
		for _, in := range ins {
			if !in.State.Final() {
				_, _ = c.client.CancelIntent(ctx, in.ID, api.CancelIntentRequest{AbortRunning: true})
			}
		}
	}
	running := func() []api.Migration {
		ms, err := c.client.Migrations(ctx, "")
		if err != nil {
			return nil
		}
		var out []api.Migration
		for _, m := range ms {
			if !m.State.Final() {
				out = append(out, m)
			}
		}
		return out
	}
	ms := running()
	for _, m := range ms {
		c.log.Info("aborting a migration left running", "id", m.ID, "vm", m.VM, "state", m.State)
		_, _ = c.client.AbortMigration(ctx, m.ID)
	}
	for deadline := time.Now().Add(time.Minute); len(ms) > 0 && time.Now().Before(deadline); ms = running() {
		time.Sleep(500 * time.Millisecond)
	}
}

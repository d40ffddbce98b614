package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/hostinfo"
)

// proc is a godwit process the benchmark started; it is stopped by PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// clusterConfig says what cluster to start: a controller and hosts
// host1..hostN, each agent optionally in its own network namespace.
type clusterConfig struct {
	name  string // for logs: convergence, drain
	dir   string // state, logs and the shared pool
	bin   string // the godwit binary
	hosts int
	// ctrlListen is the controller's address; agentListen and netns give
	// host i's address and namespace ("" for this one).
	ctrlListen  string
	agentListen func(i int) string
	netns       func(i int) string
	accel       string
	accelReason string
	// qemu is the agents' QEMU binary (--qemu; "" for the one on PATH).
	qemu string
	// agentArgs are more agent flags (Config.AgentArgs).
	agentArgs []string
	// allowUnsafeTCG starts the controller with
	// --allow-unsafe-tcg-migration: the repro scenario live-migrates TCG
	// guests on QEMU 7.2, which the controller refuses otherwise.
	allowUnsafeTCG bool
}

// cluster is a running controller and its agents.
type cluster struct {
	cfg    clusterConfig
	log    *slog.Logger
	url    string
	client *api.Client
	ctrl   *proc
	agents []*proc
}

func hostName(i int) string { return "host" + strconv.Itoa(i) }

// startCluster starts the controller and the agents, waits until every
// host is up and imports the test guest. On failure it stops what it
// started.
func startCluster(ctx context.Context, log *slog.Logger, cfg clusterConfig) (c *cluster, err error) {
	c = &cluster{cfg: cfg, log: log.With("cluster", cfg.name), url: "http://" + cfg.ctrlListen}
	c.client = api.NewClient(c.url)
	defer func() {
		if err != nil {
			c.stop()
			c = nil
		}
	}()
	for _, d := range []string{"logs", "shared", "hosts", "controller"} {
		if err := os.MkdirAll(filepath.Join(cfg.dir, d), 0o755); err != nil {
			return c, fmt.Errorf("create the cluster directory: %w", err)
		}
	}
	args := []string{"serve", "--listen", cfg.ctrlListen, "--data-dir", filepath.Join(cfg.dir, "controller"),
		"--host-down-after", "30s", "--log-level", "info"}
	if cfg.allowUnsafeTCG {
		args = append(args, "--allow-unsafe-tcg-migration")
	}
	if c.ctrl, err = c.start("controller", "", args...); err != nil {
		return c, err
	}
	if err := c.waitFor(ctx, 30*time.Second, "the controller to answer", func() error {
		if c.ctrl.exited() {
			return fmt.Errorf("the controller exited; see %s", c.ctrl.log)
		}
		_, err := c.client.Version(ctx)
		return err
	}); err != nil {
		return c, err
	}
	for i := 1; i <= cfg.hosts; i++ {
		name := hostName(i)
		args := []string{"agent", "--name", name, "--listen", cfg.agentListen(i), "--controller", c.url,
			"--state-dir", c.stateDir(name), "--shared-dir", filepath.Join(cfg.dir, "shared"),
			"--driver", "qemu", "--accel", cfg.accel, "--accel-reason", cfg.accelReason,
			"--heartbeat", "1s", "--log-level", "info"}
		if cfg.qemu != "" {
			args = append(args, "--qemu", cfg.qemu)
		}
		args = append(args, cfg.agentArgs...)
		ns := ""
		if cfg.netns != nil {
			ns = cfg.netns(i)
		}
		p, err := c.start(name, ns, args...)
		if err != nil {
			return c, err
		}
		c.agents = append(c.agents, p)
	}
	if err := c.waitFor(ctx, 60*time.Second, fmt.Sprintf("%d hosts up", cfg.hosts), func() error {
		for _, a := range c.agents {
			if a.exited() {
				return fmt.Errorf("agent %s exited; see %s", a.name, a.log)
			}
		}
		hs, err := c.client.Hosts(ctx)
		if err != nil {
			return err
		}
		up := 0
		for _, h := range hs {
			if h.State == api.HostUp {
				up++
			}
		}
		if up < cfg.hosts {
			return fmt.Errorf("%d of %d hosts up", up, cfg.hosts)
		}
		return nil
	}); err != nil {
		return c, err
	}
	return c, c.importGuest(ctx)
}

// start runs one godwit process, in namespace ns when not empty. It gets
// its own process group: a Ctrl-C on the terminal reaches the benchmark
// only, which then stops the cluster in order (VMs first).
func (c *cluster) start(name, ns string, args ...string) (*proc, error) {
	logPath := filepath.Join(c.cfg.dir, "logs", name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	var cmd *exec.Cmd
	if ns == "" {
		cmd = exec.Command(c.cfg.bin, args...)
	} else {
		// ip netns exec execs the program in the same process: the PID
		// is godwit's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, c.cfg.bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c.log.Info("started", "proc", name, "pid", cmd.Process.Pid, "netns", ns, "log", logPath)
	return p, nil
}

func (c *cluster) stateDir(host string) string { return filepath.Join(c.cfg.dir, "hosts", host) }

// consolePath is where the qemu driver on host keeps a VM's serial
// console log (internal/driver/qemu: <state>/qemu/vms/<id>/console.log).
func (c *cluster) consolePath(host, vmID string) string {
	return filepath.Join(c.stateDir(host), "qemu", "vms", vmID, "console.log")
}

// importGuest builds the test guest with the godwit CLI and imports it.
func (c *cluster) importGuest(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, c.cfg.bin, "--server", c.url, "image", "build-testguest",
		"--out", filepath.Join(c.cfg.dir, "guest"), "--import", "testguest")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("godwit image build-testguest: %w\n%s", err, out)
	}
	return nil
}

// waitFor retries f every 200 ms until it succeeds, d passes or ctx ends.
func (c *cluster) waitFor(ctx context.Context, d time.Duration, what string, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s: %w", d, what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop deletes every VM through the API (best effort, so each agent stops
// its QEMU), stops the agents and the controller by PID, and kills by PID
// any QEMU process still running under the cluster's directory.
func (c *cluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if c.ctrl != nil && !c.ctrl.exited() {
		c.abortAll(ctx)
		if vms, err := c.client.VMs(ctx); err == nil {
			for _, vm := range vms {
				if err := c.client.DeleteVM(ctx, vm.Name); err != nil {
					c.log.Warn("delete vm at cleanup", "vm", vm.Name, "err", err)
				}
			}
		}
	}
	for _, a := range c.agents {
		a.stop(15 * time.Second)
	}
	if c.ctrl != nil {
		c.ctrl.stop(15 * time.Second)
	}
	for _, pid := range hostinfo.QEMUPIDs(c.cfg.dir) {
		c.log.Warn("killing a qemu process left behind", "pid", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
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
		_, err := c.client.CreateVM(ctx, api.CreateVMRequest{Name: v.name, Image: "testguest", Pool: api.PoolShared, Host: host,
			Flavor:  api.Flavor{VCPUs: 1, MemoryMiB: v.memoryMiB, DiskMiB: 64},
			Cmdline: guestCmdline(v.dirtyMiB, v.rateMB, hbHz)})
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
	return c.waitFor(ctx, d, "vm "+v.name+" to fill its dirty set", func() error {
		hb, ok, err := c.lastHeartbeat(ctx, v.name)
		if err != nil {
			return err
		}
		if !ok || hb.HotMiB < int64(v.dirtyMiB) {
			return fmt.Errorf("%d of %d MiB filled", hb.HotMiB, v.dirtyMiB)
		}
		return nil
	})
}

// waitBeating waits until a VM's console shows a new heartbeat on the
// host it runs on now.
func (c *cluster) waitBeating(ctx context.Context, name string, d time.Duration) error {
	var seen int64 = -1
	return c.waitFor(ctx, d, "heartbeats of vm "+name, func() error {
		last, ok, err := c.lastHeartbeat(ctx, name)
		if err != nil {
			return err
		}
		hb := last.Counter
		switch {
		case !ok:
			return errors.New("no heartbeat yet")
		case seen < 0:
			seen = hb
			return errors.New("waiting for the next heartbeat")
		case hb == seen:
			return fmt.Errorf("heartbeat stuck at %d", hb)
		}
		return nil
	})
}

// lastHeartbeat is the last complete heartbeat on the console of a VM on
// the host it runs on now.
func (c *cluster) lastHeartbeat(ctx context.Context, name string) (guestlog.Heartbeat, bool, error) {
	vm, err := c.client.VM(ctx, name)
	if err != nil {
		return guestlog.Heartbeat{}, false, err
	}
	b, err := os.ReadFile(c.consolePath(vm.Host, vm.ID))
	if err != nil {
		return guestlog.Heartbeat{}, false, err
	}
	hb, ok := guestlog.Last(bytes.NewReader(b))
	return hb, ok, nil
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
			if !api.FinalIntent(in.State) {
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
			if !finalMigration(m.State) {
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

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/safe"
)

// The watchdog is a separate process (godwit agent-watchdog), because
// fencing must work when the agent cannot: frozen (SIGSTOP), stuck on a
// shared pool that stopped answering, or dead. It watches the renewals the
// agent reports on local disk and, when none came for FenceAfter, kills
// every QEMU of the host whose disk is on the shared pool, before the
// lease's TTL runs out and the controller may rebuild those VMs elsewhere.
// It opens no driver: it asks the driver's registered factory for the
// processes (its driver.Fencer), which works from the state directory alone.
//
// An agent that dies with kill -9 leaves its QEMUs running, and a new
// agent reattaches them: the watchdog does not care which agent renews,
// only that renewals go on. A new agent finds the running watchdog by its
// pid file, or starts one.

const (
	fencedLog    = "fenced.log"
	watchdogPID  = "watchdog.pid"
	watchdogLock = "watchdog.lock"
	watchdogLogf = "watchdog.log"
)

// WatchdogConfig configures godwit agent-watchdog.
type WatchdogConfig struct {
	StateDir string // the agent's state directory
	// Driver is the agent's driver (default qemu); a driver whose factory
	// is no driver.Fencer has no processes, so nothing is killed.
	Driver     string
	Host       string        // for the log
	FenceAfter time.Duration // no renewal for this long: fence
	// Poll is how often the renewals are read; default FenceAfter/10,
	// at most 250ms.
	Poll time.Duration
	// Stay keeps the watchdog running when the agent is gone and nothing
	// is left to guard: a service manager runs it for good
	// (godwit-agent-watchdog.service), outside the agent's unit, and a
	// new agent finds it instead of starting its own.
	Stay   bool
	Logger *slog.Logger
}

// fencing is one line of <state>/fence/fenced.log.
type fencing struct {
	At      time.Time  `json:"at"`
	Seq     uint64     `json:"seq"`      // the last renewal seen
	StillMS int64      `json:"still_ms"` // how long it had stood still
	Killed  []killedVM `json:"killed"`
}

type killedVM struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// RunWatchdog guards one agent state directory until ctx ends or nothing
// is left to guard. Once renewals stopped for FenceAfter it kills every
// QEMU of the host on the shared pool, and goes on killing any that
// appears until renewals resume. It leaves when the agent that renewed
// last is gone (stopped cleanly, or dead) and no QEMU of the host runs on
// the shared pool: a new agent starts a new watchdog. A second watchdog
// on the same directory leaves at once.
func RunWatchdog(ctx context.Context, cfg WatchdogConfig) error {
	if cfg.FenceAfter <= 0 {
		return errors.New("agent-watchdog: --fence-after is required")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = min(cfg.FenceAfter/10, 250*time.Millisecond)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Driver == "" {
		cfg.Driver = driver.HypervisorQEMU
	}
	f, err := driver.Lookup(cfg.Driver)
	if err != nil {
		return fmt.Errorf("agent-watchdog: %w", err)
	}
	fencer, _ := f.(driver.Fencer) // nil: no processes to kill
	log := cfg.Logger.With("host", cfg.Host, "pid", os.Getpid())
	dir := fenceDir(cfg.StateDir)
	if cfg.Stay {
		// A service manager may start it before the agent ever ran.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("agent-watchdog: %w", err)
		}
	}
	lf, err := os.OpenFile(filepath.Join(dir, watchdogLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("agent-watchdog: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !cfg.Stay {
			log.Info("another watchdog guards this host; leaving")
			return nil
		}
		// A service manager's watchdog waits to take over from the one
		// an agent started (in a gap of this unit's restart, say), so
		// that the unit stays up and guards once that one leaves.
		log.Info("another watchdog guards this host; waiting to take over")
		if err := waitLock(ctx, lf, cfg.Poll); err != nil {
			log.Info("watchdog stopped")
			return nil
		}
	}
	pidPath := filepath.Join(dir, watchdogPID)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return fmt.Errorf("agent-watchdog: %w", err)
	}
	defer os.Remove(pidPath)
	log.Info("watchdog guarding the host's shared-pool VMs", "fence_after", cfg.FenceAfter, "poll", cfg.Poll)

	drvDir := driverDir(cfg.StateDir, cfg.Driver)
	last, _ := readRenewal(cfg.StateDir)
	advanced := time.Now()
	fenced := false          // in this stretch without renewals
	killed := map[int]bool{} // PIDs killed in this stretch
	tick := time.NewTicker(cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("watchdog stopped")
			return nil
		case <-tick.C:
		}
		r, err := readRenewal(cfg.StateDir)
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(dir); errors.Is(serr, os.ErrNotExist) && !cfg.Stay {
				log.Info("state directory gone; leaving")
				return nil
			}
		}
		if err == nil && r.Seq != last.Seq {
			advanced, fenced, killed = time.Now(), false, map[int]bool{}
		}
		if err == nil {
			last = r
		}
		still := time.Since(advanced)
		agentGone := last.Stopping || !processAlive(last.PID)
		if still < cfg.FenceAfter && !agentGone {
			continue
		}
		procs, err := sharedProcesses(fencer, drvDir)
		if err != nil {
			log.Error("list the qemu processes", "err", err)
		}
		// A QEMU killed a moment ago may not have exited yet.
		procs = slices.DeleteFunc(procs, func(p driver.Process) bool { return killed[p.PID] })
		if cfg.Stay && err == nil && len(procs) == 0 && agentGone {
			continue // idle until an agent renews: no VM to fence, none to record
		}
		if still >= cfg.FenceAfter && (!fenced || len(procs) > 0) {
			for _, p := range fence(log, dir, procs, last.Seq, still) {
				killed[p] = true
			}
			fenced = true
			continue
		}
		if err == nil && len(procs) == 0 && agentGone && !cfg.Stay {
			log.Info("the agent is gone and no VM of this host runs on the shared pool; leaving", "agent_stopped_cleanly", last.Stopping)
			return nil
		}
	}
}

// sharedProcesses lists the processes fencer says the host must kill; none
// without a fencer (a driver without processes).
func sharedProcesses(fencer driver.Fencer, drvDir string) ([]driver.Process, error) {
	if fencer == nil {
		return nil, nil
	}
	return fencer.SharedDiskProcesses(drvDir)
}

// processAlive reports whether pid runs (and is not a zombie).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return !(i > 0 && i+2 < len(b) && b[i+2] == 'Z')
}

// fence kills the host's QEMUs on the shared pool and records it.
// It returns the PIDs it killed.
func fence(log *slog.Logger, dir string, procs []driver.Process, seq uint64, still time.Duration) []int {
	rec := fencing{At: time.Now().UTC(), Seq: seq, StillMS: still.Milliseconds(), Killed: []killedVM{}}
	for _, p := range procs {
		if p.Kill() {
			rec.Killed = append(rec.Killed, killedVM{ID: p.VMID, Name: p.Name, PID: p.PID})
			log.Warn("fenced: killed the vm's qemu", "vm", p.Name, "id", p.VMID, "qemu_pid", p.PID)
		}
	}
	log.Warn("fenced: the lease was not renewed in time; every qemu of this host on the shared pool is killed",
		"seq", seq, "still", still.Round(time.Millisecond), "killed", len(rec.Killed))
	b, _ := json.Marshal(rec)
	f, err := os.OpenFile(filepath.Join(dir, fencedLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		_, err = f.Write(append(b, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		log.Error("fencing: record it", "err", err)
	}
	pids := make([]int, len(rec.Killed))
	for i, k := range rec.Killed {
		pids[i] = k.PID
	}
	return pids
}

// ensureWatchdog starts a watchdog for this agent unless one runs.
func (a *Agent) ensureWatchdog() error {
	dir := fenceDir(a.cfg.StateDir)
	if pid, ok := watchdogRunning(a.cfg.StateDir); ok {
		if a.watchdogPID != pid {
			a.log.Info("fencing watchdog found", "watchdog_pid", pid)
			a.watchdogPID = pid
		}
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(dir, watchdogLogf), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(a.cfg.Watchdog, "agent-watchdog", "--state-dir", a.cfg.StateDir, "--name", a.cfg.Name,
		"--driver", a.cfg.Driver, "--fence-after", a.cfg.FenceAfter.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: a signal to the agent's process group (Ctrl-C)
	// does not reach it, and it outlives the agent, as the QEMUs do.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	a.watchdogPID = cmd.Process.Pid
	safe.Go(a.log, "watchdog reaper", func() { _ = cmd.Wait() }) // reap it if it leaves while this agent runs
	a.log.Info("fencing watchdog started", "watchdog_pid", a.watchdogPID, "fence_after", a.cfg.FenceAfter)
	return nil
}

// watchdogRunning returns the PID of the watchdog guarding stateDir, if
// one runs: its pid file names a live agent-watchdog of this directory —
// one told the directory on its command line (the agent's own), or one
// that holds the directory's lock (a service manager's, which read the
// directory from the agent's config file).
func watchdogRunning(stateDir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(fenceDir(stateDir), watchdogPID))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cl, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return 0, false
	}
	s := string(cl)
	if !strings.Contains(s, "\x00agent-watchdog\x00") {
		return 0, false
	}
	return pid, strings.Contains(s, "\x00--state-dir\x00"+stateDir+"\x00") || lockHeld(filepath.Join(fenceDir(stateDir), watchdogLock))
}

// waitLock takes f's exclusive flock once it is free, or returns ctx's
// error.
func waitLock(ctx context.Context, f *os.File, poll time.Duration) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// lockHeld reports whether some process holds path's flock (a watchdog's
// exclusive one): a shared lock cannot be had then.
func lockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close() // releases the probe's lock, if it got one
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil
}

package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver/drivertest"
	"github.com/godwit/godwit/internal/lease"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestLeaseDefaults(t *testing.T) {
	for _, tt := range []struct {
		name              string
		cfg               Config
		renew, ttl, fence time.Duration
		wantErr           string
	}{
		{"defaults", Config{SharedDir: "/s"}, 2 * time.Second, 10 * time.Second, 7 * time.Second, ""},
		{"short ttl", Config{SharedDir: "/s", LeaseRenew: 500 * time.Millisecond, LeaseTTL: 3 * time.Second}, 500 * time.Millisecond, 3 * time.Second, 2100 * time.Millisecond, ""},
		{"no shared pool, no lease", Config{}, 0, 0, 0, ""},
		{"turned off", Config{SharedDir: "/s", NoLease: true}, 0, 0, 0, ""},
		{"fence after the ttl", Config{SharedDir: "/s", LeaseTTL: 3 * time.Second, FenceAfter: 3 * time.Second}, 0, 0, 0, "shorter than --lease-ttl"},
		{"fence before two renewals", Config{SharedDir: "/s", LeaseRenew: 2 * time.Second, LeaseTTL: 5 * time.Second, FenceAfter: 3 * time.Second}, 0, 0, 0, "two renewals"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.leaseDefaults()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c := tt.cfg; c.LeaseRenew != tt.renew || c.LeaseTTL != tt.ttl || c.FenceAfter != tt.fence {
				t.Errorf("renew %s ttl %s fence %s; want %s %s %s", c.LeaseRenew, c.LeaseTTL, c.FenceAfter, tt.renew, tt.ttl, tt.fence)
			}
		})
	}
}

// An agent renews its lease from the start, tells its watchdog after each
// renewal, says so when it stops, and a new agent continues the sequence.
func TestKeepLease(t *testing.T) {
	state, shared := t.TempDir(), t.TempDir()
	cfg := Config{Name: "h1", StateDir: state, SharedDir: shared, Driver: "fake", Logger: quiet(),
		LeaseRenew: 20 * time.Millisecond, LeaseTTL: time.Second}
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitSeq := func(min uint64) lease.Lease {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			l, err := lease.Read(lease.Path(shared, "h1"))
			if err == nil && l.Seq >= min {
				return l
			}
			if time.Now().After(deadline) {
				t.Fatalf("lease %+v (%v); want seq %d", l, err, min)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	l := waitSeq(3)
	if l.Host != "h1" || l.RenewMS != 20 || l.TTLMS != 1000 {
		t.Errorf("lease %+v", l)
	}
	a.Close()
	last, err := lease.Read(lease.Path(shared, "h1"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := readRenewal(state)
	if err != nil || r.Seq != last.Seq || !r.Stopping || r.PID != os.Getpid() {
		t.Fatalf("renewal %+v (%v); want seq %d, stopping", r, err, last.Seq)
	}
	time.Sleep(60 * time.Millisecond)
	if l, _ := lease.Read(lease.Path(shared, "h1")); l.Seq != last.Seq {
		t.Fatalf("a closed agent renewed: seq %d after %d", l.Seq, last.Seq)
	}

	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitSeq(last.Seq + 1)
	// The renewal record is written just after the lease: give it the
	// moment between the two.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r, _ := readRenewal(state)
		if !r.Stopping {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new agent's renewal still says stopping: %+v", r)
		}
	}
}

// sharedVM defines a VM on the shared pool in the QEMU driver's state
// format (written by hand: this package does not see the driver's types)
// and runs a fake QEMU for it.
func sharedVM(t *testing.T, state, id string) *exec.Cmd {
	t.Helper()
	dir := filepath.Join(state, "qemu", "vms", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "qemu.pid")
	p := drivertest.FakeQEMU(t, id, pidFile)
	st := map[string]any{"version": 1, "pid": p.Process.Pid, "Launch": map[string]any{
		"Spec":    map[string]any{"ID": id, "Name": "vm1", "Disk": map[string]any{"Path": "/shared/vms/" + id + ".qcow2", "Shared": true}},
		"PIDFile": pidFile}}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(p.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func runWatchdog(t *testing.T, state string, fenceAfter time.Duration) chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunWatchdog(ctx, WatchdogConfig{StateDir: state, Host: "h1", FenceAfter: fenceAfter, Poll: 20 * time.Millisecond, Logger: quiet()})
	}()
	t.Cleanup(cancel)
	return done
}

// The watchdog leaves the host alone while renewals go on, kills its
// shared-pool QEMUs when they stop for FenceAfter, and any that appears
// after, for as long as the (frozen) agent does not renew.
func TestWatchdogFences(t *testing.T) {
	state := t.TempDir()
	os.MkdirAll(fenceDir(state), 0o755)
	const id, id2 = "55555555-5555-5555-5555-555555555555", "66666666-6666-6666-6666-666666666666"
	vm := sharedVM(t, state, id)
	agent := os.Getpid() // the agent: alive throughout, as a frozen one is
	writeRenewal(state, renewal{Seq: 1, PID: agent})
	done := runWatchdog(t, state, 300*time.Millisecond)
	for seq := uint64(2); seq < 12; seq++ { // 1 s of renewals
		time.Sleep(100 * time.Millisecond)
		writeRenewal(state, renewal{Seq: seq, PID: agent})
	}
	if gone(vm.Process.Pid) {
		t.Fatal("fenced although the lease was renewed")
	}
	if pid, ok := watchdogRunning(state); ok {
		t.Fatalf("watchdogRunning found pid %d: the test process is no agent-watchdog", pid)
	}
	stopped := time.Now()
	waitGone := func(pid int) time.Duration {
		t.Helper()
		for !gone(pid) {
			if time.Since(stopped) > 5*time.Second {
				t.Fatalf("qemu %d not fenced", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(stopped)
	}
	if took := waitGone(vm.Process.Pid); took < 300*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("fenced %s after the last renewal; want about 300ms", took)
	}
	late := sharedVM(t, state, id2)
	waitGone(late.Process.Pid)
	select {
	case <-done:
		t.Fatal("the watchdog left while the agent lives without renewing")
	default:
	}

	b, err := os.ReadFile(filepath.Join(fenceDir(state), fencedLog))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var recs []fencing
	for _, l := range lines {
		var r fencing
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("fence record %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 || recs[0].Seq != 11 || len(recs[0].Killed) != 1 || recs[0].Killed[0].ID != id || recs[0].Killed[0].PID != vm.Process.Pid ||
		len(recs[1].Killed) != 1 || recs[1].Killed[0].ID != id2 {
		t.Errorf("fence records:\n%s", b)
	}

	// The agent stops cleanly: nothing left to guard.
	writeRenewal(state, renewal{Seq: 11, PID: agent, Stopping: true})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog stayed after the agent stopped")
	}
	if _, err := os.Stat(filepath.Join(fenceDir(state), watchdogPID)); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

// A watchdog stays while its agent runs, and leaves without fencing once
// the agent stopped cleanly with nothing on the shared pool; a second
// watchdog leaves at once.
func TestWatchdogLeaves(t *testing.T) {
	state := t.TempDir()
	os.MkdirAll(fenceDir(state), 0o755)
	writeRenewal(state, renewal{Seq: 1, PID: os.Getpid()}) // an agent that runs
	first := runWatchdog(t, state, time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(fenceDir(state), watchdogPID)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no pid file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-runWatchdog(t, state, time.Minute):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a second watchdog stayed")
	}
	select {
	case <-first:
		t.Fatal("the watchdog left while its agent runs")
	case <-time.After(200 * time.Millisecond):
	}
	writeRenewal(state, renewal{Seq: 1, PID: os.Getpid(), Stopping: true})
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog stayed after a clean stop with nothing to guard")
	}
	if _, err := os.Stat(filepath.Join(fenceDir(state), fencedLog)); !os.IsNotExist(err) {
		t.Errorf("fenced on a clean stop: %v", err)
	}
}

// A service manager's watchdog (--stay) starts before any agent ran,
// idles without recording fencings while no agent runs and nothing is on
// the shared pool, holds the lock a starting agent checks, and still
// fences a QEMU left behind by an agent that stopped.
func TestWatchdogStays(t *testing.T) {
	state := filepath.Join(t.TempDir(), "agent") // not there yet
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- RunWatchdog(ctx, WatchdogConfig{StateDir: state, Host: "h1", FenceAfter: 100 * time.Millisecond,
			Poll: 10 * time.Millisecond, Stay: true, Logger: quiet()})
	}()
	select {
	case err := <-done:
		t.Fatalf("the watchdog left: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := os.Stat(filepath.Join(fenceDir(state), fencedLog)); !os.IsNotExist(err) {
		t.Errorf("fenced with no agent and no VM: %v", err)
	}
	if !lockHeld(filepath.Join(fenceDir(state), watchdogLock)) {
		t.Error("the watchdog's lock is not held")
	}

	const id = "77777777-7777-7777-7777-777777777777"
	vm := sharedVM(t, state, id)
	writeRenewal(state, renewal{Seq: 5, PID: os.Getpid(), Stopping: true}) // an agent renewed, then stopped
	deadline := time.Now().Add(5 * time.Second)
	for !gone(vm.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the left-behind qemu was not fenced")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if lockHeld(filepath.Join(fenceDir(state), watchdogLock)) {
		t.Error("the lock is still held after the watchdog stopped")
	}
}

// A --stay watchdog started while another guards the host waits, and
// takes over when that one leaves.
func TestWatchdogStayTakesOver(t *testing.T) {
	state := t.TempDir()
	os.MkdirAll(fenceDir(state), 0o755)
	writeRenewal(state, renewal{Seq: 1, PID: os.Getpid()})
	first := runWatchdog(t, state, time.Minute)
	pidFile := filepath.Join(fenceDir(state), watchdogPID)
	waitFile := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := os.Stat(pidFile); err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("no pid file")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFile()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	second := make(chan error, 1)
	go func() {
		second <- RunWatchdog(ctx, WatchdogConfig{StateDir: state, FenceAfter: time.Minute, Poll: 10 * time.Millisecond, Stay: true, Logger: quiet()})
	}()
	select {
	case err := <-second:
		t.Fatalf("the --stay watchdog left: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	writeRenewal(state, renewal{Seq: 1, PID: os.Getpid(), Stopping: true}) // the first one leaves
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitFile() // the second one's
	if !lockHeld(filepath.Join(fenceDir(state), watchdogLock)) {
		t.Error("the --stay watchdog did not take the lock over")
	}
	cancel()
	if err := <-second; err != nil {
		t.Fatal(err)
	}
}

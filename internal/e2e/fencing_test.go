package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/hostinfo"
)

// Split brain on real QEMU: host1's agent freezes (SIGSTOP) while its VM
// runs on the shared pool. Evacuate is refused while host1's lease is
// live; host1's watchdog kills the VM's QEMU before the lease's TTL; once
// the lease expired the controller evacuates without the operator's word
// and the VM runs on host2 with its disk's data. Then host1 thaws: it
// never runs the VM again and removes its stale copy, keeping the shared
// disk.
func TestSplitBrainFencedQEMU(t *testing.T) {
	requireQEMU(t)
	const ttl = 3 * time.Second
	c := newCluster(t, clusterOpts{hosts: 2, driver: "qemu", downAfter: 2 * time.Second,
		agentArgs: []string{"--lease-renew", "500ms", "--lease-ttl", ttl.String()}})
	c.importGuest()
	vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "brain", Image: "testguest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	before := c.waitDiskRecords("brain", 3, 120*time.Second)
	if vm, err = c.client.VM(bg, "brain"); err != nil || vm.PID == 0 {
		t.Fatalf("brain: pid %d, %v", vm.PID, err)
	}
	qemuA := vm.PID
	watchdog := gcluster.WatchdogPID(c.StateDir("host1"))
	if watchdog == 0 {
		t.Fatal("host1 runs no fencing watchdog")
	}

	// host1's agent freezes: no heartbeats, no lease renewals; its QEMU
	// runs on and writes the shared disk.
	agentA := c.Agent("host1")
	if err := syscall.Kill(agentA.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	thawed := false
	thaw := func() {
		if !thawed {
			_ = syscall.Kill(agentA.PID(), syscall.SIGCONT)
			thawed = true
		}
	}
	t.Cleanup(thaw) // before the harness stops it

	// Evacuate, again and again, until the controller accepts.
	var (
		killedAfter, acceptedAfter time.Duration
		refusals                   []string
		in                         api.Intent
	)
	for {
		since := time.Since(frozen)
		if killedAfter == 0 && !processAlive(qemuA) {
			killedAfter = since
		}
		in, err = c.client.Evacuate(bg, "host1", api.EvacuateRequest{})
		if err == nil {
			acceptedAfter = time.Since(frozen)
			break
		}
		if !api.IsCode(err, api.CodeConflict) {
			t.Fatalf("evacuate %s after the freeze: %v; want 409 or success", since.Round(time.Millisecond), err)
		}
		if kind := refusalKind(err.Error()); len(refusals) == 0 || !strings.HasPrefix(refusals[len(refusals)-1], kind) {
			refusals = append(refusals, fmt.Sprintf("%s at %s: %v", kind, since.Round(time.Millisecond), err))
		}
		if since > 30*time.Second {
			t.Fatalf("evacuate still refused %s after the freeze: %v", since, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, r := range refusals {
		t.Logf("refused: %s", r)
	}
	if killedAfter == 0 && !processAlive(qemuA) {
		killedAfter = acceptedAfter // gone by the accepting call: too late, reported below
	}
	t.Logf("host1 frozen; its qemu (pid %d) killed by the watchdog after %s; evacuate accepted after %s",
		qemuA, killedAfter.Round(time.Millisecond), acceptedAfter.Round(time.Millisecond))
	switch {
	case killedAfter == 0:
		t.Errorf("host1's qemu still runs after the evacuate was accepted")
	case killedAfter >= ttl:
		t.Errorf("host1's qemu killed %s after the freeze; want before the lease's TTL %s", killedAfter, ttl)
	case killedAfter >= acceptedAfter:
		t.Errorf("evacuate accepted (%s) before host1's qemu was killed (%s)", acceptedAfter, killedAfter)
	}
	if acceptedAfter < ttl {
		t.Errorf("evacuate accepted %s after the freeze, before the lease's TTL %s", acceptedAfter, ttl)
	}
	if len(refusals) == 0 || !strings.HasPrefix(refusals[0], "host up") {
		t.Errorf("first refusal %q; want the host still up", refusals)
	}
	if !strings.Contains(strings.Join(in.Notes, "\n"), "proven down: the lease of host host1") {
		t.Errorf("intent notes %q; want the expired lease as proof", in.Notes)
	}
	rec, err := os.ReadFile(filepath.Join(c.StateDir("host1"), "fence", "fenced.log"))
	if err != nil || !strings.Contains(string(rec), vm.ID) || !strings.Contains(string(rec), strconv.Itoa(qemuA)) {
		t.Errorf("host1's fence record: %q (%v)", rec, err)
	}
	t.Logf("fence record: %s", strings.TrimSpace(string(rec)))
	if !processAlive(watchdog) {
		t.Errorf("host1's watchdog (pid %d) left while its agent is frozen; it must go on guarding", watchdog)
	}

	in = c.waitIntent(in.ID, 120*time.Second)
	if in.State != api.IntentCompleted {
		t.Fatalf("evacuate ended %s: %+v", in.State, in.Operations)
	}
	moved, _ := c.client.VM(bg, "brain")
	if moved.Host != "host2" || moved.State != api.VMRunning || moved.ID != vm.ID {
		t.Fatalf("brain is %s on %s; want running on host2", moved.State, moved.Host)
	}
	hb := c.waitHeartbeat("brain", 2, 120*time.Second)
	c.noTrouble("brain")
	if hb.DiskBad != 0 || hb.DiskRecords < before.DiskRecords {
		t.Errorf("on host2 the guest verified %d records, %d bad; it had written %d on host1", hb.DiskRecords, hb.DiskBad, before.DiskRecords)
	}
	running := time.Since(frozen)

	// host1 thaws. It must not start the VM again, and it removes its
	// stale copy without touching the shared disk.
	thaw()
	c.eventually(30*time.Second, "host1's stale copy removed", func() error {
		got, err := c.client.VM(bg, "brain")
		if err == nil && len(got.StaleCopies) > 0 {
			err = fmt.Errorf("stale copies on %v", got.StaleCopies)
		}
		return err
	})
	if pids := hostinfo.QEMUPIDs(vm.ID); len(pids) != 1 || pids[0] != moved.PID {
		t.Errorf("qemu processes of brain: %v; want only host2's (%d)", pids, moved.PID)
	}
	if _, err := os.Stat(filepath.Join(c.StateDir("host1"), "qemu", "vms", vm.ID)); !os.IsNotExist(err) {
		t.Errorf("host1 kept its state for the evacuated vm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.SharedDir(), "vms", vm.ID+".qcow2")); err != nil {
		t.Errorf("the shared disk is gone: %v", err)
	}
	c.waitHosts()
	if h, _ := c.client.Host(bg, "host1"); h.Lease == nil || h.Lease.State != "renewing" {
		t.Errorf("host1's lease after the thaw: %+v; want renewing", h.Lease)
	}
	if got := gcluster.WatchdogPID(c.StateDir("host1")); got != watchdog {
		t.Errorf("host1's watchdog after the thaw: pid %d; want the one that fenced (%d)", got, watchdog)
	}
	after := c.waitHeartbeat("brain", hb.Counter+3, 30*time.Second)
	if logb, _ := os.ReadFile(agentA.Log()); !strings.Contains(string(logb), "lease renewed after a gap") {
		t.Errorf("host1's agent did not notice its lease had lapsed")
	}
	t.Logf("brain running on host2 %s after the freeze (heartbeat %d, %d disk records verified); after host1 thawed, heartbeat %d and one qemu (pid %d)",
		running.Round(time.Millisecond), hb.Counter, hb.DiskRecords, after.Counter, moved.PID)
	if err := c.client.DeleteVM(bg, "brain"); err != nil {
		t.Error(err)
	}
}

// refusalKind names an evacuate refusal for the log.
func refusalKind(msg string) string {
	switch {
	case strings.Contains(msg, "is up"):
		return "host up"
	case strings.Contains(msg, "still renews"), strings.Contains(msg, "was renewed"):
		return "lease renewed lately"
	case strings.Contains(msg, "retry in"):
		return "lease lapsing"
	}
	return "other"
}

// processAlive reports whether pid runs (and is not a zombie).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return !(i > 0 && i+2 < len(b) && b[i+2] == 'Z')
}

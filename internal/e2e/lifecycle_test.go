package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostinfo"
	"github.com/godwit/godwit/internal/testguest"
)

// requireQEMU skips a test that needs real QEMU and the test guest.
func requireQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-QEMU test skipped in -short mode")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make test installs it)")
	}
	if why := testguest.Missing(); why != "" {
		t.Skip(why)
	}
}

var bg = context.Background()

// A VM on real QEMU: created, booted (heartbeats on its console), stopped,
// started again, rebooted and deleted, with nothing left behind.
func TestVMLifecycleQEMU(t *testing.T) {
	requireQEMU(t)
	c := newCluster(t, clusterOpts{hosts: 3, driver: "qemu"})
	c.importGuest()

	vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "web-1", Image: "testguest",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 192, DiskMiB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	if vm.State != api.VMRunning || vm.PID == 0 || vm.Host == "" {
		t.Fatalf("created vm = %+v; want running with a PID on a host", vm)
	}
	hb := c.waitHeartbeat("web-1", 3, 90*time.Second)
	if hb.DiskMiB != 64 {
		t.Errorf("guest sees a %d MiB disk; want 64", hb.DiskMiB)
	}
	if pids := hostinfo.QEMUPIDs(vm.ID); len(pids) != 1 || pids[0] != vm.PID {
		t.Fatalf("qemu processes for the vm = %v; want exactly [%d]", pids, vm.PID)
	}

	// Graceful stop: the guest powers off on the ACPI button.
	vm, err = c.client.VMAction(bg, "web-1", "stop", api.VMActionRequest{TimeoutSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	if vm.State != api.VMStopped || len(hostinfo.QEMUPIDs(vm.ID)) != 0 {
		t.Fatalf("after stop: state %s, qemu pids %v", vm.State, hostinfo.QEMUPIDs(vm.ID))
	}

	from := c.consoleLen("web-1")
	vm, err = c.client.VMAction(bg, "web-1", "start", api.VMActionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if vm.State != api.VMRunning || vm.PID == 0 {
		t.Fatalf("after start: %+v", vm)
	}
	hb = c.waitHeartbeatFrom("web-1", from, 2, 90*time.Second)
	if hb.DiskRecords == 0 || hb.DiskBad != 0 {
		t.Errorf("after restart the guest found %d disk records, %d bad; want its earlier records intact", hb.DiskRecords, hb.DiskBad)
	}

	if err := c.client.DeleteVM(bg, "web-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.VM(bg, "web-1"); !api.IsCode(err, api.CodeNotFound) {
		t.Fatalf("vm after delete: %v; want not found", err)
	}
	if pids := hostinfo.QEMUPIDs(vm.ID); len(pids) != 0 {
		t.Errorf("qemu still running after delete: %v", pids)
	}
	if left := append(files(filepath.Join(c.Dir(), "hosts"), ".qcow2"), files(c.SharedDir(), ".qcow2")...); len(left) != 0 {
		t.Errorf("disks left after delete: %v", left)
	}
}

// An agent killed and restarted with a VM running: the VM keeps running in
// the same QEMU process, its heartbeat keeps counting, and the controller
// sees it again.
func TestAgentRestartKeepsVMQEMU(t *testing.T) {
	requireQEMU(t)
	c := newCluster(t, clusterOpts{hosts: 1, driver: "qemu"})
	c.importGuest()
	vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "db-1", Image: "testguest",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}, Pool: api.PoolShared})
	if err != nil {
		t.Fatal(err)
	}
	before := c.waitHeartbeat("db-1", 2, 90*time.Second)

	c.Agent(vm.Host).Kill()
	if pids := hostinfo.QEMUPIDs(vm.ID); len(pids) != 1 || pids[0] != vm.PID {
		t.Fatalf("with the agent dead, qemu pids = %v; want [%d] still running", pids, vm.PID)
	}
	c.startAgent(vm.Host)
	c.waitHosts()

	after := c.waitHeartbeat("db-1", before.Counter+5, 30*time.Second)
	got, err := c.client.VM(bg, "db-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.PID != vm.PID || got.State != api.VMRunning {
		t.Fatalf("after agent restart vm = state %s pid %d; want running pid %d", got.State, got.PID, vm.PID)
	}
	t.Logf("heartbeat %d before the agent restart, %d after; qemu pid %d unchanged", before.Counter, after.Counter, vm.PID)
	if err := c.client.DeleteVM(bg, "db-1"); err != nil {
		t.Fatal(err)
	}
}

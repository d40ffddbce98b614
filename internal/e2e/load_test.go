package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// faultsFull is set by `make test-faults`: the long versions of the fault
// tests (the 2-minute load test).
func faultsFull() bool { return os.Getenv("GODWIT_FAULTS_FULL") == "1" }

// loadDuration is how long the load test's clients run: 2 minutes under
// `make test-faults`, 30 s otherwise, or GODWIT_LOAD_DURATION.
func loadDuration(t *testing.T) time.Duration {
	if s := os.Getenv("GODWIT_LOAD_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("GODWIT_LOAD_DURATION: %v", err)
		}
		return d
	}
	if faultsFull() {
		return 2 * time.Minute
	}
	return 30 * time.Second
}

// loadClients is how many clients the load test runs at once.
const loadClients = 50

// ledger is what the API acknowledged during the load: only these must
// survive the controller's crashes.
type ledger struct {
	mu      sync.Mutex
	created map[string]string // vm name → id, 2xx on create
	deleted map[string]bool   // vm name, 2xx on delete
	// mayBeGone: a delete the controller died under (no answer): it may
	// have happened or not, but never half (a record left deleting).
	mayBeGone map[string]bool
	migrated  map[string]string // migration id → vm name, 2xx on migrate
	counts    map[string]int    // "op outcome" → requests
}

func (l *ledger) count(op, outcome string) {
	l.mu.Lock()
	l.counts[op+" "+outcome]++
	l.mu.Unlock()
}

// outcome names how a request ended: accepted, an API error code, or
// unreachable (the controller was down: no answer, nothing promised).
func outcome(err error) string {
	if err == nil {
		return "accepted"
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return "unreachable"
}

// loadClient owns the VMs it created, so clients do not trip over each
// other's; what one VM does is random among what its state allows.
type loadClient struct {
	c   *cluster
	l   *ledger
	id  int
	rnd *rand.Rand
	vms []string // names it may own (created, or sent a create that got no answer)
	seq int
}

func (lc *loadClient) run(until time.Time) {
	for time.Now().Before(until) {
		lc.step()
		time.Sleep(time.Duration(50+lc.rnd.IntN(250)) * time.Millisecond)
	}
}

func (lc *loadClient) forget(name string) {
	for i, n := range lc.vms {
		if n == name {
			lc.vms = append(lc.vms[:i], lc.vms[i+1:]...)
			return
		}
	}
}

func (lc *loadClient) step() {
	cl, l := lc.c.client, lc.l
	if len(lc.vms) < 2 && (len(lc.vms) == 0 || lc.rnd.IntN(3) == 0) {
		lc.seq++
		name := fmt.Sprintf("c%02d-vm%d", lc.id, lc.seq)
		pool := api.PoolShared
		if lc.rnd.IntN(2) == 0 {
			pool = api.PoolLocal
		}
		start := lc.rnd.IntN(4) != 0
		vm, err := cl.CreateVM(bg, api.CreateVMRequest{Name: name, Image: "testguest", Pool: pool, Start: &start,
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64, DiskMiB: 16}, Cmdline: "dirty_mb=8 dirty_rate_mb=4"})
		l.count("create", outcome(err))
		switch outcome(err) {
		case "accepted":
			l.mu.Lock()
			l.created[name] = vm.ID
			l.mu.Unlock()
			lc.vms = append(lc.vms, name)
		case "unreachable":
			lc.vms = append(lc.vms, name) // it may exist: look after it all the same
		}
		return
	}
	name := lc.vms[lc.rnd.IntN(len(lc.vms))]
	vm, err := cl.VM(bg, name)
	if api.IsCode(err, api.CodeNotFound) {
		lc.forget(name)
		return
	}
	if err != nil {
		return
	}
	var op string
	switch r := lc.rnd.IntN(10); {
	case r < 1:
		op = "delete"
		err = cl.DeleteVM(bg, name)
		switch outcome(err) {
		case "accepted":
			l.mu.Lock()
			l.deleted[name] = true
			l.mu.Unlock()
			lc.forget(name)
		case "unreachable":
			l.mu.Lock()
			l.mayBeGone[name] = true
			l.mu.Unlock()
		}
	case r < 3:
		op = "start"
		if vm.State == api.VMRunning {
			op = "stop"
		}
		_, err = cl.VMAction(bg, name, op, api.VMActionRequest{})
	default:
		kind := api.KindCold
		if vm.State == api.VMRunning && lc.rnd.IntN(3) != 0 {
			kind = api.KindLive
		}
		op = "migrate-" + string(kind)
		// 64 MiB at 40 MB/s: a live transfer of about 2 s.
		var m api.Migration
		m, err = cl.Migrate(bg, name, api.MigrateRequest{Kind: kind, BandwidthMBps: 40})
		if outcome(err) == "accepted" {
			l.mu.Lock()
			l.migrated[m.ID] = name
			l.mu.Unlock()
		}
	}
	l.count(op, outcome(err))
}

// Fifty clients create, start, stop, delete and migrate (live and cold)
// VMs on four fake hosts while the controller is killed (-9) and
// restarted three times. Afterwards nothing the API acknowledged is lost:
// every created VM exists unless its delete was acknowledged, every
// acknowledged migration ended (completed, rolled back or cancelled), no
// VM runs on two hosts, and every host's allocation is exactly the VMs
// recorded on it. Requests the dead controller never answered promise
// nothing.
func TestControllerLoadWithKills(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	dur := loadDuration(t)
	hostNames := []string{"host1", "host2", "host3", "host4"}
	c := newCluster(t, clusterOpts{hosts: len(hostNames), driver: "fake", agentArgs: []string{"--cpus", "64", "--memory", "64G"}})
	c.fakeGuestImage()
	l := &ledger{created: map[string]string{}, deleted: map[string]bool{}, mayBeGone: map[string]bool{}, migrated: map[string]string{}, counts: map[string]int{}}
	begin := time.Now()
	until := begin.Add(dur)
	var wg sync.WaitGroup
	for i := range loadClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc := &loadClient{c: c, l: l, id: i, rnd: rand.New(rand.NewPCG(uint64(i), uint64(begin.UnixNano())))}
			lc.run(until)
		}()
	}
	// Three kills, spread over the run; the controller is away 1–2 s.
	for k := 1; k <= 3; k++ {
		time.Sleep(time.Until(begin.Add(dur * time.Duration(k) / 4)))
		c.Controller().Kill()
		t.Logf("controller killed (%d of 3) at %s", k, time.Since(begin).Round(time.Second))
		time.Sleep(time.Duration(1000+rand.IntN(1000)) * time.Millisecond)
		c.startController()
	}
	wg.Wait()
	t.Logf("clients done after %s", time.Since(begin).Round(time.Second))

	// Every migration, acknowledged or not, ends.
	c.eventually(2*time.Minute, "every migration to end", func() error {
		ms, err := c.client.Migrations(bg, "")
		if err != nil {
			return err
		}
		for _, m := range ms {
			if !m.State.Final() {
				return fmt.Errorf("migration %s of %s is %s", m.ID, m.VM, m.State)
			}
		}
		return nil
	})
	c.checkLoad(l, hostNames)
}

// checkLoad checks the cluster against the ledger and prints the table.
func (c *cluster) checkLoad(l *ledger, hostNames []string) {
	t := c.t
	ms, err := c.client.Migrations(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]api.Migration{}
	ends := map[string]int{}
	for _, m := range ms {
		byID[m.ID] = m
		ends[string(m.Kind)+" "+string(m.State)]++
		if m.State == api.MigNeedsAttention {
			t.Errorf("migration %s (%s of %s, %s → %s) needs attention: %s", m.ID, m.Kind, m.VM, m.Source, m.Destination, m.Reason)
		}
	}
	for id, vm := range l.migrated {
		if _, ok := byID[id]; !ok {
			t.Errorf("acknowledged migration %s of %s is lost", id, vm)
		}
	}
	vms, err := c.client.VMs(bg)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]api.VM{}
	for _, vm := range vms {
		byName[vm.Name] = vm
		if vm.State != api.VMRunning && vm.State != api.VMStopped {
			t.Errorf("vm %s is %s (%s) on %s", vm.Name, vm.State, vm.StateReason, vm.Host)
		}
	}
	for name, id := range l.created {
		vm, ok := byName[name]
		switch {
		case l.deleted[name] && ok:
			t.Errorf("vm %s still exists after its delete was acknowledged", name)
		case !l.deleted[name] && !ok && !l.mayBeGone[name]:
			t.Errorf("acknowledged vm %s (%s) is lost", name, id)
		case ok && vm.ID != id:
			t.Errorf("vm %s has id %s; the create acknowledged %s", name, vm.ID, id)
		}
	}
	// What each agent runs: one copy per VM, on the host its record names.
	copies := map[string][]string{}
	for _, h := range hostNames {
		reps, err := c.AgentClient(h, 10*time.Second).VMs(bg)
		if err != nil {
			t.Fatalf("list vms on %s: %v", h, err)
		}
		for _, r := range reps {
			copies[r.ID] = append(copies[r.ID], h+":"+r.State)
		}
	}
	byVMID := map[string]api.VM{}
	for _, vm := range vms {
		byVMID[vm.ID] = vm
		got := copies[vm.ID]
		want := vm.Host + ":" + map[string]string{api.VMRunning: "running", api.VMStopped: "stopped"}[vm.State]
		if len(got) != 1 || got[0] != want {
			t.Errorf("vm %s: copies %v; want exactly %s", vm.Name, got, want)
		}
	}
	for id, got := range copies {
		if _, ok := byVMID[id]; !ok {
			t.Errorf("hosts hold a vm no record knows: %s on %v", id, got)
		}
	}
	// Claims: each host's allocation is the VMs recorded on it, no more.
	hosts, err := c.client.Hosts(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		n, mem, disk := 0, 0, 0
		for _, vm := range vms {
			if vm.Host == h.Name {
				n, mem = n+1, mem+vm.Flavor.MemoryMiB
				if vm.Pool == api.PoolLocal {
					disk += vm.Flavor.DiskMiB
				}
			}
		}
		if h.VMs != n || h.AllocatedMemoryMiB != mem || h.AllocatedDiskMiB != disk {
			t.Errorf("%s allocates %d VMs, %d MiB, %d MiB disk; its VMs hold %d, %d MiB, %d MiB disk (a leaked or lost claim)",
				h.Name, h.VMs, h.AllocatedMemoryMiB, h.AllocatedDiskMiB, n, mem, disk)
		}
	}
	var rows []string
	for k, n := range l.counts {
		rows = append(rows, fmt.Sprintf("request %-40s %5d", k, n))
	}
	for k, n := range ends {
		rows = append(rows, fmt.Sprintf("migration ended %-32s %5d", k, n))
	}
	sort.Strings(rows)
	rows = append(rows, fmt.Sprintf("vms at the end %33d", len(vms)), fmt.Sprintf("acknowledged creates %27d", len(l.created)),
		fmt.Sprintf("acknowledged deletes %27d", len(l.deleted)), fmt.Sprintf("acknowledged migrations %24d", len(l.migrated)))
	t.Logf("load with 3 controller kills:\n%s", strings.Join(rows, "\n"))
	faultTable(t, "load", rows)
}

// Package storetest is the conformance suite every store engine passes:
// the same subtests run against SQLite and PostgreSQL.
package storetest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// Run runs the suite. open returns a new, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Hosts", testHosts},
		{"MarkHostsDown", testMarkHostsDown},
		{"VMs", testVMs},
		{"UpdateVMConcurrent", testUpdateVMConcurrent},
		{"Images", testImages},
		{"Networks", testNetworks},
		{"Ports", testPorts},
		{"PortsUnique", testPortsUnique},
		{"PortsConcurrent", testPortsConcurrent},
		{"NetworkDeleteRace", testNetworkDeleteRace},
		{"Flavors", testFlavors},
		{"KeyPairs", testKeyPairs},
		{"Migrations", testMigrations},
		{"Intents", testIntents},
		{"ClusterSettings", testClusterSettings},
		{"Tokens", testTokens},
		{"Quotas", testQuotas},
		{"Audit", testAudit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// now is a time with sub-microsecond detail, to catch lossy storage.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func host(name string, hb time.Time) api.Host {
	return api.Host{Name: name, Address: "http://127.0.0.1:1", CPUs: 4, MemoryMiB: 8192, DiskMiB: 100000,
		CPUModel: "Test CPU", CPUFlags: []string{"sse2", "avx"}, Hypervisor: "fake", Accelerator: "tcg",
		Pools: []api.Pool{{Name: "local", Kind: "local", Path: "/x"}}, LastHeartbeat: hb}
}

func testHosts(t *testing.T, s store.Store) {
	t0 := now()
	created, err := s.UpsertHost(ctx, host("h1", t0))
	if err != nil || !created {
		t.Fatalf("first upsert = %v, %v; want created", created, err)
	}
	got, err := s.Host(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	want := host("h1", t0)
	want.State, want.Enabled, want.RegisteredAt = api.HostUp, true, t0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("host round trip:\n got %+v\nwant %+v", got, want)
	}
	if err := s.SetHostEnabled(ctx, "h1", false); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Second)
	h := host("h1", t1)
	h.CPUs = 8
	h.Enabled = true // reported fields never override the operator's choice
	if created, err := s.UpsertHost(ctx, h); err != nil || created {
		t.Fatalf("second upsert = %v, %v; want updated", created, err)
	}
	got, _ = s.Host(ctx, "h1")
	if got.Enabled || got.CPUs != 8 || !got.RegisteredAt.Equal(t0) || !got.LastHeartbeat.Equal(t1) {
		t.Errorf("after heartbeat: enabled %v cpus %d registered %v last %v", got.Enabled, got.CPUs, got.RegisteredAt, got.LastHeartbeat)
	}
	if _, err := s.Host(ctx, "nope"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("unknown host: %v; want ErrNotFound", err)
	}
	// What UpdateHost keeps outlives the next heartbeat.
	if _, err := s.UpdateHost(ctx, "h1", func(h *api.Host) error { h.DisabledReason, h.ForcedDown = "disk swap", true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertHost(ctx, api.Host{Name: "h1", LastHeartbeat: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Host(ctx, "h1"); err != nil || h.DisabledReason != "disk swap" || !h.ForcedDown {
		t.Errorf("after a heartbeat: disabled reason %q, forced down %v, %v", h.DisabledReason, h.ForcedDown, err)
	}
	if _, err := s.UpdateHost(ctx, "nope", func(*api.Host) error { return nil }); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("UpdateHost of a missing host: %v", err)
	}
	if err := s.SetHostEnabled(ctx, "nope", true); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("enable unknown host: %v; want ErrNotFound", err)
	}
	s.UpsertHost(ctx, host("h0", t0))
	hs, _ := s.Hosts(ctx)
	if len(hs) != 2 || hs[0].Name != "h0" || hs[1].Name != "h1" {
		t.Errorf("hosts = %+v; want h0, h1", hs)
	}
}

func testMarkHostsDown(t *testing.T, s store.Store) {
	t0 := now()
	s.UpsertHost(ctx, host("old", t0.Add(-time.Minute)))
	s.UpsertHost(ctx, host("fresh", t0))
	down, err := s.MarkHostsDown(ctx, t0.Add(-10*time.Second))
	if err != nil || !reflect.DeepEqual(down, []string{"old"}) {
		t.Fatalf("MarkHostsDown = %v, %v; want [old]", down, err)
	}
	if h, _ := s.Host(ctx, "old"); h.State != api.HostDown {
		t.Errorf("old host is %s; want down", h.State)
	}
	if down, _ := s.MarkHostsDown(ctx, t0.Add(-10*time.Second)); len(down) != 0 {
		t.Errorf("second MarkHostsDown = %v; want none (already down)", down)
	}
	s.UpsertHost(ctx, host("old", t0))
	if h, _ := s.Host(ctx, "old"); h.State != api.HostUp {
		t.Errorf("host back after a heartbeat is %s; want up", h.State)
	}
}

func vm(name, hostName string) api.VM {
	t := now()
	return api.VM{ID: "id-" + name, Name: name, Project: "p", Host: hostName, Image: "img",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 1024}, Pool: "local",
		DesiredState: api.VMRunning, State: api.VMCreating, CreatedAt: t, UpdatedAt: t}
}

func testVMs(t *testing.T, s store.Store) {
	a, b := vm("a", "h1"), vm("b", "h2")
	for _, v := range []api.VM{b, a} {
		if err := s.CreateVM(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	dup := vm("a", "h3")
	dup.ID = "other-id"
	if err := s.CreateVM(ctx, dup); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("duplicate name: %v; want ErrConflict", err)
	}
	got, err := s.VM(ctx, "a")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("vm round trip: %v\n got %+v\nwant %+v", err, got, a)
	}
	all, _ := s.VMs(ctx, store.VMFilter{})
	if len(all) != 2 || all[0].Name != "a" {
		t.Errorf("VMs = %+v; want a, b", all)
	}
	onH2, _ := s.VMs(ctx, store.VMFilter{Host: "h2"})
	if len(onH2) != 1 || onH2[0].Name != "b" {
		t.Errorf("VMs on h2 = %+v; want b", onH2)
	}
	if none, _ := s.VMs(ctx, store.VMFilter{Project: "other"}); len(none) != 0 {
		t.Errorf("VMs of another project = %+v", none)
	}
	if byID, _ := s.VMs(ctx, store.VMFilter{ID: all[1].ID}); len(byID) != 1 || byID[0].Name != all[1].Name {
		t.Errorf("VMs with ID %s = %+v; want %s", all[1].ID, byID, all[1].Name)
	}
	up, err := s.UpdateVM(ctx, "a", func(v *api.VM) error { v.State, v.Host = api.VMRunning, "h2"; return nil })
	if err != nil || up.State != api.VMRunning || !up.UpdatedAt.After(a.UpdatedAt.Add(-time.Millisecond)) {
		t.Fatalf("UpdateVM = %+v, %v", up, err)
	}
	if onH2, _ := s.VMs(ctx, store.VMFilter{Host: "h2"}); len(onH2) != 2 {
		t.Errorf("after moving a to h2, VMs on h2 = %d; want 2", len(onH2))
	}
	boom := errors.New("boom")
	if _, err := s.UpdateVM(ctx, "a", func(v *api.VM) error { v.State = api.VMError; return boom }); err != boom {
		t.Errorf("UpdateVM with failing fn: %v; want the fn's error", err)
	}
	if got, _ := s.VM(ctx, "a"); got.State != api.VMRunning {
		t.Errorf("failed update was written: state %s", got.State)
	}
	if _, err := s.UpdateVM(ctx, "nope", func(*api.VM) error { return nil }); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("update unknown: %v; want ErrNotFound", err)
	}
	if err := s.DeleteVM(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VM(ctx, "a"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("deleted vm: %v; want ErrNotFound", err)
	}
	if err := s.DeleteVM(ctx, "a"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("delete twice: %v; want ErrNotFound", err)
	}
}

// Read-modify-write through UpdateVM loses no update under concurrency.
func testUpdateVMConcurrent(t *testing.T, s store.Store) {
	if err := s.CreateVM(ctx, vm("c", "h1")); err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateVM(ctx, "c", func(v *api.VM) error { v.Flavor.VCPUs++; return nil })
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.VM(ctx, "c")
	if got.Flavor.VCPUs != 1+n {
		t.Errorf("after %d concurrent increments vcpus = %d; want %d", n, got.Flavor.VCPUs, 1+n)
	}
}

func testImages(t *testing.T, s store.Store) {
	im := api.Image{Name: "img", Kind: api.ImageKernel, Cmdline: "console=ttyS0",
		Files: []api.ImageFile{{Role: "kernel", Size: 10, SHA256: "ab"}}, CreatedAt: now()}
	if err := s.CreateImage(ctx, im); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateImage(ctx, im); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("duplicate image: %v; want ErrConflict", err)
	}
	got, err := s.Image(ctx, "img")
	if err != nil || !reflect.DeepEqual(got, im) {
		t.Fatalf("image round trip: %v\n got %+v\nwant %+v", err, got, im)
	}
	s.CreateVM(ctx, vm("user", "h1"))
	err = s.DeleteImage(ctx, "img")
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "user") {
		t.Errorf("delete image in use: %v; want ErrConflict naming the vm", err)
	}
	for _, n := range []string{"u7", "u2", "u6", "u1", "u5", "u4", "u3"} {
		s.CreateVM(ctx, vm(n, "h1"))
	}
	err = s.DeleteImage(ctx, "img")
	if want := "used by vms u1, u2, u3, u4, u5 and 3 more; "; !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), want) {
		t.Errorf("delete image used by 8 vms: %v; want ErrConflict containing %q", err, want)
	}
	for _, n := range []string{"user", "u1", "u2", "u3", "u4", "u5", "u6", "u7"} {
		s.DeleteVM(ctx, n)
	}
	if err := s.DeleteImage(ctx, "img"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Image(ctx, "img"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("deleted image: %v", err)
	}
	if err := s.DeleteImage(ctx, "img"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("delete twice: %v; want ErrNotFound", err)
	}
	if ims, _ := s.Images(ctx); len(ims) != 0 {
		t.Errorf("images = %+v", ims)
	}
}

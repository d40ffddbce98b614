package scheduler

import (
	"errors"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

func TestFilters(t *testing.T) {
	base := api.Host{Name: "h", State: api.HostUp, Enabled: true, CPUs: 2, MemoryMiB: 1024, DiskMiB: 10000,
		Pools: []api.Pool{{Name: "local"}, {Name: "shared"}}, Hypervisor: "qemu", Accelerator: "kvm",
		CPUModel: "EPYC", CPUFlags: []string{"sse2", "avx2"}}
	src := base
	flavor := api.Flavor{VCPUs: 1, MemoryMiB: 512, DiskMiB: 1000}
	for _, tt := range []struct {
		name string
		mod  func(*api.Host)
		p    Placement
		want string // substring of the reason; "" when the host fits
	}{
		{"fits", func(*api.Host) {}, Placement{Flavor: flavor, Pool: "local"}, ""},
		{"down", func(h *api.Host) { h.State = api.HostDown }, Placement{Flavor: flavor, Pool: "local"}, "down"},
		{"disabled", func(h *api.Host) { h.Enabled = false }, Placement{Flavor: flavor, Pool: "local"}, "disabled"},
		{"no shared pool", func(h *api.Host) { h.Pools = h.Pools[:1] }, Placement{Flavor: flavor, Pool: "shared"}, "no shared pool"},
		{"memory", func(h *api.Host) { h.AllocatedMemoryMiB = 600 }, Placement{Flavor: flavor, Pool: "local"}, "424 MiB memory free"},
		{"vcpus at 4:1", func(h *api.Host) { h.AllocatedCPUs = 8 }, Placement{Flavor: flavor, Pool: "local"}, "0 vCPUs free"},
		{"local disk", func(h *api.Host) { h.AllocatedDiskMiB = 9500 }, Placement{Flavor: flavor, Pool: "local"}, "local disk free"},
		{"shared disk needs no local room", func(h *api.Host) { h.AllocatedDiskMiB = 9500 }, Placement{Flavor: flavor, Pool: "shared"}, ""},
		{"live: other accelerator", func(h *api.Host) { h.Accelerator = "tcg" }, Placement{Flavor: flavor, Pool: "shared", Live: true, Source: src}, "runs qemu/tcg"},
		{"live: other cpu model under kvm", func(h *api.Host) { h.CPUModel = "Xeon" }, Placement{Flavor: flavor, Pool: "shared", Live: true, Source: src}, "CPU"},
		{"live: missing cpu flag under kvm", func(h *api.Host) { h.CPUFlags = []string{"sse2"} }, Placement{Flavor: flavor, Pool: "shared", Live: true, Source: src}, "CPU"},
		{"cold: other cpu is fine", func(h *api.Host) { h.CPUModel = "Xeon" }, Placement{Flavor: flavor, Pool: "shared", Source: src}, ""},
	} {
		h := base
		h.Pools = append([]api.Pool(nil), base.Pools...)
		tt.mod(&h)
		got := Check(h, tt.p)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: check = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestScheduleSpreadsAndExplains(t *testing.T) {
	hosts := []api.Host{
		{Name: "a", State: api.HostUp, Enabled: true, CPUs: 4, MemoryMiB: 1000, AllocatedMemoryMiB: 800, Pools: []api.Pool{{Name: "local"}}, DiskMiB: 1000},
		{Name: "b", State: api.HostUp, Enabled: true, CPUs: 4, MemoryMiB: 1000, AllocatedMemoryMiB: 100, Pools: []api.Pool{{Name: "local"}}, DiskMiB: 1000},
		{Name: "c", State: api.HostDown, Enabled: true, CPUs: 4, MemoryMiB: 1000, Pools: []api.Pool{{Name: "local"}}, DiskMiB: 1000},
	}
	h, err := pick(hosts, Placement{Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 100}, Pool: "local"})
	if err != nil || h.Name != "b" {
		t.Errorf("schedule = %s, %v; want b (most free memory)", h.Name, err)
	}
	_, err = pick(hosts, Placement{Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 5000}, Pool: "local"})
	if err == nil || !strings.Contains(err.Error(), "a: 200 MiB memory free") || !strings.Contains(err.Error(), "c: down") {
		t.Errorf("no-capacity error = %v; want one reason per host", err)
	}
}

// The live filter passes over hosts whose live migrations lose guest
// writes (TCG before QEMU 9.0, or of unknown version) at either end,
// unless the cluster allows them; KVM hosts are fine on any QEMU.
func TestUnsafeTCGFilter(t *testing.T) {
	host := func(accel, qemu string) api.Host {
		return api.Host{Name: "h", State: api.HostUp, Enabled: true, CPUs: 2, MemoryMiB: 1024, Pools: []api.Pool{{Name: "shared"}},
			Hypervisor: "qemu", Accelerator: accel, QEMUVersion: qemu}
	}
	flavor := api.Flavor{VCPUs: 1, MemoryMiB: 512}
	for _, tt := range []struct {
		name     string
		src, dst api.Host
		allow    bool
		want     string // substring of the reason; "" when the host fits
	}{
		{"tcg on 9.0 and 10.0", host("tcg", "10.0.2"), host("tcg", "9.0.0"), false, ""},
		{"tcg destination on 7.2", host("tcg", "10.0.2"), host("tcg", "7.2.22"), false, "runs TCG on QEMU 7.2.22, which loses guest writes"},
		{"tcg source on 7.2", host("tcg", "7.2.22"), host("tcg", "10.0.2"), false, "the source runs TCG on QEMU 7.2.22"},
		{"tcg of unknown version", host("tcg", "10.0.2"), host("tcg", ""), false, "unknown version"},
		{"allowed by the cluster", host("tcg", "7.2.22"), host("tcg", "7.2.22"), true, ""},
		{"kvm on 7.2", host("kvm", "7.2.22"), host("kvm", "7.2.22"), false, ""},
		{"kvm of unknown version", host("kvm", ""), host("kvm", ""), false, ""},
	} {
		got := Check(tt.dst, Placement{Flavor: flavor, Pool: "shared", Live: true, Source: tt.src, AllowUnsafeTCG: tt.allow})
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: check = %q; want %q", tt.name, got, tt.want)
		}
		if cold := Check(tt.dst, Placement{Flavor: flavor, Pool: "shared", Source: tt.src}); cold != "" {
			t.Errorf("%s: cold check = %q; want none", tt.name, cold)
		}
	}
}

// Pick under the TCG gate: an unsafe source is refused with the gate's
// 422 at once; unsafe destinations are passed over while a safe one can
// take the VM; when only unsafe ones could, the refusal is the gate's,
// not "no capacity".
func TestPickUnderTheTCGGate(t *testing.T) {
	host := func(name, qemu string, memFree int) api.Host {
		return api.Host{Name: name, State: api.HostUp, Enabled: true, CPUs: 2, MemoryMiB: 1024, AllocatedMemoryMiB: 1024 - memFree,
			Pools: []api.Pool{{Name: "shared"}}, Hypervisor: "qemu", Accelerator: "tcg", QEMUVersion: qemu}
	}
	p := Placement{Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}, Pool: "shared", Live: true, Source: host("src", "10.0.2", 1024)}

	if h, err := Pick([]api.Host{host("old", "7.2.22", 900), host("new", "10.0.2", 300)}, p); err != nil || h.Name != "new" {
		t.Errorf("pick = %s, %v; want new (old has more room but loses writes)", h.Name, err)
	}
	_, err := Pick([]api.Host{host("old", "7.2.22", 900)}, p)
	if !IsUnsafeTCG(err) || !errors.Is(err, errs.ErrNotSupported) || !strings.Contains(err.Error(), "old runs TCG on QEMU 7.2.22") {
		t.Errorf("only an unsafe destination: %v; want the gate's 422 naming it", err)
	}
	unsafeSrc := p
	unsafeSrc.Source = host("src", "7.2.22", 1024)
	if _, err := Pick([]api.Host{host("new", "10.0.2", 900)}, unsafeSrc); !IsUnsafeTCG(err) || !strings.Contains(err.Error(), "src runs TCG on QEMU 7.2.22") {
		t.Errorf("unsafe source: %v; want the gate's refusal naming it", err)
	}
	allowed := unsafeSrc
	allowed.AllowUnsafeTCG = true
	if h, err := Pick([]api.Host{host("old", "7.2.22", 900)}, allowed); err != nil || h.Name != "old" {
		t.Errorf("allowed by the cluster: %s, %v; want old", h.Name, err)
	}
	if _, err := Pick([]api.Host{host("small", "10.0.2", 100)}, p); IsUnsafeTCG(err) || !errors.Is(err, errs.ErrNoCapacity) {
		t.Errorf("no room anywhere: %v; want no capacity, not the gate", err)
	}
}

// A plan's claims: each choice sees the room the one before it took.
func TestClaimAndRoomFor(t *testing.T) {
	hosts := []api.Host{
		{Name: "a", State: api.HostUp, Enabled: true, CPUs: 1, MemoryMiB: 1000, DiskMiB: 1000, Pools: []api.Pool{{Name: "local"}}},
		{Name: "b", State: api.HostUp, Enabled: true, CPUs: 1, MemoryMiB: 900, DiskMiB: 1000, Pools: []api.Pool{{Name: "local"}}},
	}
	p := Placement{Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 300, DiskMiB: 600}, Pool: "local"}
	var got []string
	for range 3 {
		h, err := Pick(hosts, p)
		if err != nil {
			got = append(got, "none")
			continue
		}
		got = append(got, h.Name)
		Claim(hosts, h.Name, p.Flavor, p.Pool)
	}
	if strings.Join(got, ",") != "a,b,none" {
		t.Errorf("three placements = %v; want a, b, then none (local disk full)", got)
	}
	if len(Without(hosts, "a")) != 1 || Without(hosts, "a")[0].Name != "b" {
		t.Errorf("Without(a) = %v", Without(hosts, "a"))
	}
	vm := api.VM{Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 300, DiskMiB: 600}, Pool: api.PoolLocal}
	if why := RoomFor(hosts, "a", vm, api.Flavor{VCPUs: 1, MemoryMiB: 1200, DiskMiB: 600}); !strings.Contains(why, "MiB memory free") {
		t.Errorf("room to grow to 1200 MiB on a: %q; want the memory it lacks", why)
	}
	if why := RoomFor(hosts, "a", vm, api.Flavor{VCPUs: 1, MemoryMiB: 200, DiskMiB: 600}); why != "" {
		t.Errorf("room to shrink: %q; want none needed", why)
	}
}

// A TCG guest with hot-plugged memory never moves live; under KVM, or
// with nothing plugged, or cold, it may.
func TestRefuseLiveHotplugged(t *testing.T) {
	tcg := api.Host{Name: "h1", Accelerator: "tcg", Hypervisor: "qemu", QEMUVersion: "10.0.2"}
	kvm := tcg
	kvm.Accelerator = "kvm"
	for _, c := range []struct {
		name    string
		p       Placement
		refused bool
	}{
		{"tcg, 128 MiB plugged, live", Placement{Live: true, Source: tcg, HotpluggedMiB: 128}, true},
		{"tcg, nothing plugged", Placement{Live: true, Source: tcg}, false},
		{"tcg, plugged, cold", Placement{Source: tcg, HotpluggedMiB: 128}, false},
		{"kvm, plugged, live", Placement{Live: true, Source: kvm, HotpluggedMiB: 128}, false},
	} {
		err := RefuseLive(c.p)
		if (err != nil) != c.refused || (err != nil && !IsUnsafeTCG(err)) {
			t.Errorf("%s: %v; refused %v", c.name, err, c.refused)
		}
		if _, perr := Pick([]api.Host{}, c.p); c.refused && !IsUnsafeTCG(perr) {
			t.Errorf("%s: Pick did not refuse with the gate: %v", c.name, perr)
		}
	}
	if vm := (api.VM{Flavor: api.Flavor{MemoryMiB: 384}, BootMemoryMiB: 256}); Hotplugged(vm) != 128 {
		t.Errorf("Hotplugged = %d; want 128", Hotplugged(vm))
	}
}

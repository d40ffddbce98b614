package qemu

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

const goldenID = "0c7b6a1e-0000-4000-8000-000000000001"

// The whole command line of a few representative VMs, compared with
// testdata/cmdline.golden; run with -update after an intended change and
// review the diff.
func TestCommandLineGolden(t *testing.T) {
	base := driver.VMSpec{ID: goldenID, Name: "web-1", VCPUs: 2, MaxVCPUs: 4, MemoryMiB: 256,
		Kernel: "/img/vmlinuz", Initrd: "/img/initrd", Cmdline: "console=ttyS0 dirty_mb=16",
		Disk: &driver.Disk{Path: "/pool/a,b.qcow2", SizeMiB: 64}}
	paths := launch{QMP: "/run/godwit/1a2b/" + goldenID + ".qmp", Console: "/state/vms/" + goldenID + "/console.log",
		PIDFile: "/state/vms/" + goldenID + "/qemu.pid", Machine: "pc-q35-7.2"}

	firmware := base
	firmware.Name, firmware.Kernel, firmware.Initrd, firmware.Cmdline = "db,primary", "", "", ""
	incoming := base
	incoming.Disk, incoming.MaxVCPUs, incoming.CPUModel = nil, 0, "qemu64"
	hotplugged := base
	hotplugged.VCPUs, hotplugged.MemoryMiB, hotplugged.BootMemoryMiB, hotplugged.MaxMemoryMiB = 3, 512, 256, 1024
	leftToItself := base
	leftToItself.OnPanic = api.OnPanicNone
	networked := base
	networked.Seed = "/state/vms/" + goldenID + "/seed.iso"
	networked.NICs = []driver.NIC{
		{Port: "5f0e2a9c-0000-4000-8000-000000000001", MAC: "02:00:0a:63:00:05", IP: "10.99.0.5", Bridge: "gw-lan", MTU: 1500, PortSecurity: true},
		{Port: "77aa01bc-0000-4000-8000-000000000002", MAC: "02:00:0a:64:00:09", IP: "10.100.0.9", Bridge: "gw-storage", MTU: 9000},
	}

	cases := []struct {
		name string
		l    launch
	}{
		{"tcg, direct kernel boot, disk path with a comma", with(paths, base, "tcg", defaultCPU("tcg"))},
		{"kvm, firmware boot from the disk, name with a comma", with(paths, firmware, "kvm", defaultCPU("kvm"))},
		{"migration destination, paused, no disk, named cpu model", func() launch {
			l := with(paths, incoming, "tcg", incoming.CPUModel)
			l.Incoming, l.Paused = true, true
			return l
		}()},
		{"hot-plugged vcpu and memory (boot 256 MiB, 256 MiB plugged, ceiling 1 GiB)", with(paths, hotplugged, "tcg", defaultCPU("tcg"))},
		{"on-panic none: QEMU only reports a guest panic", with(paths, leftToItself, "tcg", defaultCPU("tcg"))},
		{"two nics (vhost-net) and a seed", func() launch {
			l := with(paths, networked, "kvm", defaultCPU("kvm"))
			l.TapSalt, l.VHost = "beef", true
			return l
		}()},
		{"seccomp sandbox, run as another user", func() launch {
			l := with(paths, base, "kvm", defaultCPU("kvm"))
			l.Sandbox, l.RunAs = sandboxFull, runAsArgs("10.0.2", "godwit-qemu")
			return l
		}()},
	}
	var b strings.Builder
	for _, c := range cases {
		b.WriteString("# " + c.name + "\n" + strings.Join(c.l.args(), "\n") + "\n\n")
	}
	got := b.String()
	path := filepath.Join("testdata", "cmdline.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("command line changed (run with -update if intended):\n%s", got)
	}
}

func with(l launch, s driver.VMSpec, accel, cpu string) launch {
	l.Spec, l.Accel, l.CPUModel = s, accel, cpu
	return l
}

func TestDefaultCPU(t *testing.T) {
	// PVM and nested KVM refuse arch-capabilities; TCG cannot do "host".
	for accel, want := range map[string]string{"kvm": "host,arch-capabilities=off", "tcg": "max"} {
		if got := defaultCPU(accel); got != want {
			t.Errorf("defaultCPU(%s) = %s; want %s", accel, got, want)
		}
	}
}

func TestAliasOfQ35(t *testing.T) {
	// What qemu-system-x86_64 7.2 -machine help prints for q35.
	help := "Supported machines are:\n" +
		"pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)\n" +
		"pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)\n" +
		"q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\n" +
		"pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)\n"
	if m := aliasRE.FindStringSubmatch(help); m == nil || m[1] != "pc-q35-7.2" {
		t.Errorf("alias of q35 = %v; want pc-q35-7.2", m)
	}
}

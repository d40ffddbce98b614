package qemu

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
)

// launch is everything the QEMU command line is built from: the spec plus
// the host-specific choices fixed when the VM was defined (machine type,
// CPU model), so that a restart — and later a migration — starts the
// same virtual hardware. It is persisted in the state file; field names
// are part of that format.
type launch struct {
	Spec     driver.VMSpec
	Accel    string // kvm or tcg
	Machine  string // versioned, e.g. pc-q35-7.2, never the bare alias
	CPUModel string
	QMP      string // socket path
	Console  string // serial log path
	PIDFile  string
	// TapSalt is this host's part of the VM's tap names (net.go).
	TapSalt string
	// VHost: the NICs use the kernel's vhost-net (the host has it).
	VHost bool
	// Incoming starts QEMU waiting for a migration ("-incoming defer")
	// instead of booting.
	Incoming bool `json:"-"`
	// Paused starts the guest stopped (-S), for a block copy's
	// destination, which must not run before the mirror has finished.
	Paused bool `json:"-"`
	// Sandbox is -sandbox's value ("": none) and RunAs the arguments that
	// drop QEMU to another user (sandbox.go). They are this host's
	// QEMU's, set at each start, not the VM's: not persisted.
	Sandbox string   `json:"-"`
	RunAs   []string `json:"-"`
}

// args builds QEMU's arguments, one concern per helper so that later
// features (memory and CPU hotplug, more disks) each change one place.
// Devices carry stable ids and node names so QMP work (block jobs,
// hotplug, migration) can address them.
func (l launch) args() []string {
	var a []string
	for _, part := range [][]string{
		l.identity(),
		l.machine(),
		l.cpus(),
		l.memory(),
		l.control(),
		l.panicDevice(),
		l.boot(),
		l.disks(),
		l.seed(),
		l.nics(),
		l.migration(),
		l.confinement(),
		// -daemonize: QEMU returns once the VM is set up, and the VM's
		// process is not the agent's child, so it outlives the agent and
		// never becomes its zombie.
		{"-daemonize", "-pidfile", l.PIDFile},
	} {
		a = append(a, part...)
	}
	return a
}

func (l launch) identity() []string {
	return []string{
		"-name", "guest=" + escape(l.Spec.Name) + ",debug-threads=on",
		// The uuid also marks the process: alive() looks for it in
		// /proc/<pid>/cmdline to tell our QEMU from a reused PID.
		"-uuid", l.Spec.ID,
	}
}

func (l launch) machine() []string {
	return []string{
		"-machine", l.Machine,
		"-accel", l.Accel,
		"-nodefaults", "-no-user-config", "-display", "none",
	}
}

func (l launch) cpus() []string {
	s := l.Spec
	return []string{
		"-cpu", l.CPUModel,
		"-smp", fmt.Sprintf("%d,maxcpus=%d", s.VCPUs, max(s.MaxVCPUs, s.VCPUs)),
	}
}

// memory is the boot memory and, when the VM has a hotplug ceiling above
// it, one virtio-mem device spanning the rest: it starts with MemoryMiB −
// boot memory plugged, so a VM whose memory was hot-plugged restarts, or
// arrives by migration, with the same devices in the same state.
func (l launch) memory() []string {
	s := l.Spec
	boot, hp := s.BootMemory(), s.HotplugMemory()
	if hp <= 0 {
		return []string{"-m", strconv.Itoa(boot) + "M"}
	}
	// No pc-dimm slots: virtio-mem needs none, only maxmem's room.
	//
	// The boot memory is a backend of its own, made before virtio-mem's,
	// so that it is the RAM block at offset 0 of QEMU's RAM address
	// space. Left to the machine (pc.ram), it comes after the backends
	// of -object, at the offset of virtio-mem's size; and QEMU's TCG
	// dirty-bitmap sync (10.0.2, and upstream since the 9.0 fix
	// 03bfc2188f06) resets the TLB dirty state from the block's own
	// offset, 0, instead of its RAM address: for a block elsewhere it
	// resets another block's, and the guest's writes through a cached
	// TLB entry are no longer tracked. A live move of a TCG guest with
	// virtio-mem then lost writes and crashed it (4-6 of 10 moves of
	// four passes or more; docs/migration.md, "virtio-mem under TCG").
	// At offset 0 the reset covers the boot memory.
	return []string{
		"-object", fmt.Sprintf("memory-backend-ram,id=%s,size=%dM", bootMemID, boot),
		"-machine", "memory-backend=" + bootMemID,
		"-m", fmt.Sprintf("%dM,maxmem=%dM", boot, s.MemoryCeiling()),
		"-object", fmt.Sprintf("memory-backend-ram,id=%s-mem,size=%dM", vmemID, hp),
		"-device", fmt.Sprintf("virtio-mem-pci,id=%s,memdev=%s-mem,requested-size=%dM", vmemID, vmemID, s.MemoryMiB-boot),
	}
}

// vmemID is the virtio-mem device's id; its QOM path is /machine/peripheral/<id>.
// bootMemID is the boot memory's backend when the VM has virtio-mem.
const (
	vmemID    = "vmem0"
	bootMemID = "boot-mem"
)

// control is the QMP monitor (server=on,wait=off: QEMU does not wait for
// us to connect) and the serial console, appended to a file so that the
// log of earlier boots survives a restart.
func (l launch) control() []string {
	return []string{
		"-chardev", "socket,id=qmp,path=" + escape(l.QMP) + ",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "file,id=serial0,path=" + escape(l.Console) + ",append=on",
		"-serial", "chardev:serial0",
	}
}

// panicDevice is QEMU's pvpanic device, which Linux's pvpanic driver
// (pvpanic-mmio, bound to ACPI QEMU0001) writes to when the kernel panics,
// and what QEMU then does. The ISA device is libvirt's default on x86 and
// needs no PCI slot. Every VM has it, so a migration's two ends have the
// same devices (QEMU refuses a stream for a device it lacks). A VM still
// running in a QEMU started without it (by an agent from before it) could
// not migrate to one with it; there are no such VMs deployed.
//
// The action: with restart and pause, QEMU holds the guest paused at its
// panic (runstate guest-panicked) and sends GUEST_PANICKED; the driver
// records it and, for restart, resets the guest (panic.go). Holding it
// first means a panic while the agent is away is found on its return
// rather than lost in a reboot. With none, QEMU only reports it and the
// guest's own panic= setting decides. QEMU's default (shutdown) would end
// the process instead, which is no policy godwit offers.
func (l launch) panicDevice() []string {
	action := "pause"
	if l.Spec.OnPanic == api.OnPanicNone {
		action = "none"
	}
	return []string{"-device", "pvpanic", "-action", "panic=" + action}
}

// boot is direct kernel boot; without a kernel the firmware boots the
// disk (see disks).
func (l launch) boot() []string {
	s := l.Spec
	if s.Kernel == "" {
		return nil
	}
	// -kernel, -initrd and -append take their value verbatim: no escaping.
	a := []string{"-kernel", s.Kernel}
	if s.Initrd != "" {
		a = append(a, "-initrd", s.Initrd)
	}
	if s.Cmdline != "" {
		a = append(a, "-append", s.Cmdline)
	}
	return a
}

// disks is the one virtio-blk disk. QEMU's image locking stays on (the
// default), so two processes can never write one qcow2.
func (l launch) disks() []string {
	s := l.Spec
	if s.Disk == nil {
		return nil
	}
	// num-queues is pinned to the vCPU ceiling (QEMU's default is the
	// vCPUs at start, which for VMs without a ceiling is the same): with
	// the default, a VM that hot-plugged vCPUs would arrive at a migration
	// destination started with more vCPUs, hence more queues, and fail to
	// load there.
	dev := fmt.Sprintf("virtio-blk-pci,drive=disk0,id=disk0-dev,num-queues=%d", s.CPUCeiling())
	if s.Kernel == "" {
		dev += ",bootindex=1"
	}
	return []string{
		"-blockdev", "driver=file,filename=" + escape(s.Disk.Path) + ",node-name=disk0-file,cache.direct=off",
		"-blockdev", "driver=qcow2,file=disk0-file,node-name=disk0",
		"-device", dev,
	}
}

// seed is the guest's NoCloud seed, read-only, after the disk: the guest
// finds it by its volume label (cidata), not its place. Never part of a
// block copy: every host builds the same bytes.
func (l launch) seed() []string {
	if l.Spec.Seed == "" {
		return nil
	}
	return []string{
		"-blockdev", "driver=file,filename=" + escape(l.Spec.Seed) + ",node-name=seed0-file,read-only=on",
		"-blockdev", "driver=raw,file=seed0-file,node-name=seed0,read-only=on",
		"-device", "virtio-blk-pci,drive=seed0,id=seed0-dev",
	}
}

// nics is one virtio-net device per NIC on the tap the driver plugged
// (script=no: QEMU opens the tap and touches nothing else), with the
// port's MAC and the network's MTU offered to the guest (host_mtu).
// vhost-net where the host has it.
func (l launch) nics() []string {
	var a []string
	vhost := "off"
	if l.VHost {
		vhost = "on"
	}
	for i, n := range l.Spec.NICs {
		id := fmt.Sprintf("net%d", i)
		a = append(a,
			"-netdev", fmt.Sprintf("tap,id=%s,ifname=%s,script=no,downscript=no,vhost=%s", id, tapName(n.Port, l.TapSalt), vhost),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=%s,id=%s-dev,mac=%s,host_mtu=%d", id, id, n.MAC, n.MTU),
		)
	}
	return a
}

func (l launch) migration() []string {
	var a []string
	if l.Incoming {
		a = append(a, "-incoming", "defer")
	}
	if l.Paused {
		a = append(a, "-S")
	}
	return a
}

// confinement is QEMU's seccomp filter and the user it drops to, once
// set up (sandbox.go).
func (l launch) confinement() []string {
	var a []string
	if l.Sandbox != "" {
		a = append(a, "-sandbox", l.Sandbox)
	}
	return append(a, l.RunAs...)
}

// escape doubles commas, QEMU's escape inside option values.
func escape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// defaultCPU is the CPU model when the spec names none: the host's own
// under KVM (without arch-capabilities, which nested and paravirtual KVM
// such as PVM reject), and "max" under TCG.
func defaultCPU(accel string) string {
	if accel == driver.AccelKVM {
		return "host,arch-capabilities=off"
	}
	return "max"
}

package qemu

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/godwit/godwit/internal/driver"
)

// launch is everything the QEMU command line is built from: the spec plus
// the host-specific choices fixed when the VM was defined (machine type,
// CPU model), so that a restart — and later a migration — starts the
// same virtual hardware.
type launch struct {
	Spec     driver.VMSpec
	Accel    string
	Machine  string
	CPUModel string
	QMP      string // socket path
	Console  string // serial log path
	PIDFile  string
	// Incoming starts QEMU waiting for a migration ("-incoming defer")
	// instead of booting.
	Incoming bool `json:"-"`
	// Paused starts the guest stopped (-S), for a block copy's
	// destination, which must not run before the mirror has finished.
	Paused bool `json:"-"`
}

// args builds QEMU's arguments. Devices carry stable ids and node names so
// later QMP work (block jobs, hotplug, migration) can address them.
func (l launch) args() []string {
	s := l.Spec
	maxCPUs := max(s.MaxVCPUs, s.VCPUs)
	a := []string{
		"-name", "guest=" + s.Name + ",debug-threads=on",
		"-uuid", s.ID,
		"-machine", l.Machine,
		"-accel", l.Accel,
		"-cpu", l.CPUModel,
		"-smp", fmt.Sprintf("%d,maxcpus=%d", s.VCPUs, maxCPUs),
		"-m", strconv.Itoa(s.MemoryMiB) + "M",
		"-nodefaults", "-no-user-config", "-display", "none",
		"-chardev", "socket,id=qmp,path=" + l.QMP + ",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "file,id=serial0,path=" + l.Console + ",append=on",
		"-serial", "chardev:serial0",
	}
	if s.Kernel != "" {
		a = append(a, "-kernel", s.Kernel)
		if s.Initrd != "" {
			a = append(a, "-initrd", s.Initrd)
		}
		if s.Cmdline != "" {
			a = append(a, "-append", s.Cmdline)
		}
	}
	if s.Disk != nil {
		a = append(a,
			"-blockdev", "driver=file,filename="+escape(s.Disk.Path)+",node-name=disk0-file,cache.direct=off",
			"-blockdev", "driver=qcow2,file=disk0-file,node-name=disk0",
			"-device", "virtio-blk-pci,drive=disk0,id=disk0-dev",
		)
		if s.Kernel == "" {
			a[len(a)-1] += ",bootindex=1"
		}
	}
	if l.Incoming {
		a = append(a, "-incoming", "defer")
	}
	if l.Paused {
		a = append(a, "-S")
	}
	return append(a, "-daemonize", "-pidfile", l.PIDFile)
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

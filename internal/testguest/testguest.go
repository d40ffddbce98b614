// Package testguest builds godwit's test guest from Debian packages:
// Debian's kernel (linux-image-amd64) and an initramfs holding busybox,
// the virtio, ACPI, network and isofs modules the guest needs, and
// godwit-guest, the static program that prints heartbeats, dirties
// memory, writes disk records and configures its network from a
// cloud-init seed.
// The archive is written in Go (newc cpio, gzip), so no cpio tool is
// needed.
package testguest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/godwit/godwit/internal/hostinfo"
)

// Options says what to build from; empty fields take Debian's defaults.
type Options struct {
	Kernel      string // default: newest /boot/vmlinuz-*
	ModulesDir  string // default: /lib/modules/<version of Kernel>
	Busybox     string // default: /bin/busybox
	GuestBinary string // the built godwit-guest (required)
	OutDir      string // where kernel and initrd are written (required)
}

// Guest is a built test guest.
type Guest struct {
	Kernel  string
	Initrd  string
	Cmdline string
}

// Cmdline keeps boot fast and quiet but the console on the first serial
// port, where the heartbeat lines go. panic=-1 turns a guest panic into a
// reset the tests can see rather than a hang (when the host leaves the
// guest to itself: on-panic none), and oops=panic makes an oops a panic,
// which the pvpanic device reports to the host, rather than a guest
// limping on, reported running. swiotlb=noforce: a VM with
// room for hot-plugged memory has guest-physical addresses above 4 GiB,
// and Linux then reserves a 64 MiB DMA bounce buffer its virtio devices
// never use — measured here, a 256 MiB guest kept 138 MiB with it and 203
// MiB without, and 128 MiB guests ran out of memory.
const Cmdline = "console=ttyS0 panic=-1 oops=panic quiet loglevel=3 rdinit=/init swiotlb=noforce"

// wantModules are loaded at boot (with their dependencies): the virtio
// disk, virtio-mem for memory hotplug, the ACPI power button with evdev
// so a graceful stop reaches the guest, pvpanic-mmio, the driver of
// QEMU's ISA pvpanic device (ACPI QEMU0001), which tells the host of a
// kernel panic, the virtio NIC (with net_failover and failover) and
// isofs (with cdrom) to mount the cloud-init seed. Raw packet sockets
// (CONFIG_PACKET), IPv4 and Joliet's utf8 names are built into Debian's
// kernel.
var wantModules = []string{"virtio_pci", "virtio_blk", "virtio_mem", "button", "evdev", "pvpanic-mmio", "virtio_net", "isofs"}

// initScript is /init: mount the kernel filesystems, load the modules in
// dependency order (listed in /etc/modules), hand over to godwit-guest.
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/lib/modules/$m" 2>/dev/null; done < /etc/modules
exec /sbin/godwit-guest
`

func (o *Options) defaults() error {
	if o.Kernel == "" {
		o.Kernel = hostinfo.NewestKernel()
		if o.Kernel == "" {
			return fmt.Errorf("no kernel in /boot; install linux-image-amd64")
		}
	}
	if o.ModulesDir == "" {
		ver := strings.TrimPrefix(filepath.Base(o.Kernel), "vmlinuz-")
		o.ModulesDir = filepath.Join("/lib/modules", ver)
	}
	if o.Busybox == "" {
		o.Busybox = "/bin/busybox"
	}
	if o.GuestBinary == "" || o.OutDir == "" {
		return fmt.Errorf("testguest: GuestBinary and OutDir are required")
	}
	return nil
}

// Missing returns "" when everything Build needs is installed, else a
// sentence saying what is missing.
func Missing() string {
	k := hostinfo.NewestKernel()
	if k == "" {
		return "the test guest needs Debian's kernel: apt-get install linux-image-amd64 (make test does)"
	}
	ver := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
	if _, err := os.Stat(filepath.Join("/lib/modules", ver, "modules.dep")); err != nil {
		return "the test guest needs the kernel's modules in /lib/modules/" + ver + ": reinstall linux-image-amd64"
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		return "the test guest needs busybox: apt-get install busybox-static (make test does)"
	}
	return ""
}

// Build writes the kernel and the initramfs into o.OutDir.
func Build(ctx context.Context, o Options) (Guest, error) {
	if err := o.defaults(); err != nil {
		return Guest{}, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return Guest{}, err
	}
	mods, err := resolveModules(o.ModulesDir, wantModules)
	if err != nil {
		return Guest{}, err
	}
	g := Guest{Kernel: filepath.Join(o.OutDir, "vmlinuz"), Initrd: filepath.Join(o.OutDir, "initrd.img"), Cmdline: Cmdline}
	if err := copyFile(o.Kernel, g.Kernel); err != nil {
		return Guest{}, fmt.Errorf("copy kernel: %w", err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := writeInitramfs(zw, o, mods); err != nil {
		return Guest{}, fmt.Errorf("build initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return Guest{}, err
	}
	if err := writeAtomic(g.Initrd, buf.Bytes()); err != nil {
		return Guest{}, err
	}
	return g, ctx.Err()
}

func writeInitramfs(w io.Writer, o Options, mods []string) error {
	c := &cpioWriter{w: w}
	for _, d := range []string{"bin", "sbin", "dev", "proc", "sys", "etc", "tmp", "lib", "lib/modules"} {
		c.dir(d)
	}
	bb, err := os.ReadFile(o.Busybox)
	if err != nil {
		return fmt.Errorf("read busybox (apt-get install busybox-static): %w", err)
	}
	c.file("bin/busybox", 0o755, bb)
	c.symlink("bin/sh", "busybox")
	guest, err := os.ReadFile(o.GuestBinary)
	if err != nil {
		return fmt.Errorf("read godwit-guest: %w", err)
	}
	c.file("sbin/godwit-guest", 0o755, guest)
	c.file("init", 0o755, []byte(initScript))
	var list strings.Builder
	for _, m := range mods {
		b, err := os.ReadFile(filepath.Join(o.ModulesDir, m))
		if err != nil {
			return err
		}
		name := filepath.Base(m)
		c.file("lib/modules/"+name, 0o644, b)
		list.WriteString(name + "\n")
	}
	c.file("etc/modules", 0o644, []byte(list.String()))
	return c.close()
}

// resolveModules returns the module files (relative to dir) for want and
// their dependencies, dependencies first, read from modules.dep. Modules
// built into the kernel are simply absent there and skipped.
func resolveModules(dir string, want []string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("read modules.dep (is linux-image-amd64 installed?): %w", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	byName := map[string]string{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		mod, rest, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[strings.TrimSuffix(filepath.Base(mod), ".ko")] = mod
	}
	var out []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, d := range deps[m] {
			visit(d)
		}
		out = append(out, m)
	}
	for _, w := range want {
		if m, ok := byName[w]; ok {
			visit(m)
		}
	}
	return out, nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeAtomic(dst, b)
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Package accel decides which accelerator QEMU uses on a host. It does not
// trust /dev/kvm alone: on nested or paravirtual KVM (PVM, for one)
// /dev/kvm opens and tiny guests run, yet a Linux kernel hangs in early
// boot. So "auto" boots a real kernel under KVM with a short deadline and
// falls back to TCG when it does not get past the decompressor.
package accel

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Accelerators.
const (
	KVM = "kvm"
	TCG = "tcg"
)

// ProbeTimeout is how long the probe waits for the kernel's banner. Under
// working KVM it prints within a second (under TCG, for comparison, in
// about 3 s). On a host where KVM hangs, the probe costs all of it.
const ProbeTimeout = 10 * time.Second

// KVMUsable reports whether /dev/kvm opens read-write, and why not.
func KVMUsable() (bool, string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Sprintf("/dev/kvm is not usable (%v)", err)
	}
	f.Close()
	return true, ""
}

// Probe boots kernel (a bzImage, e.g. the newest /boot/vmlinuz-*) under
// KVM and says kvm only if it prints "Linux version" — i.e. got past the
// decompressor — within timeout; otherwise tcg, with the reason. It never
// leaves its QEMU running and caches nothing: a host whose KVM changes
// (a kernel update, a different hypervisor underneath) is probed afresh
// at the next start.
func Probe(ctx context.Context, kernel string, timeout time.Duration) (accel, reason string) {
	if ok, why := KVMUsable(); !ok {
		return TCG, why + "; using tcg"
	}
	if kernel == "" {
		return KVM, "/dev/kvm is usable; not probed (no kernel to boot)"
	}
	dir, err := os.MkdirTemp("", "godwit-kvm-probe-")
	if err != nil {
		return TCG, "kvm probe: " + err.Error() + "; using tcg"
	}
	defer os.RemoveAll(dir)
	return probe(ctx, "qemu-system-x86_64", kernel, dir, timeout)
}

// probe is Probe after the /dev/kvm check, with the QEMU binary and the
// scratch directory given so tests can substitute both.
func probe(ctx context.Context, qemu, kernel, dir string, timeout time.Duration) (accel, reason string) {
	console := filepath.Join(dir, "console.log")
	// -cpu host without arch-capabilities: nested and paravirtual KVM
	// (PVM) refuse the MSR, and the driver's default CPU drops it too.
	// panic=-1 makes a kernel that does boot reboot rather than sit in a
	// panic, but we kill it as soon as the banner shows anyway.
	cmd := exec.Command(qemu, "-accel", "kvm", "-cpu", "host,arch-capabilities=off",
		"-m", "128", "-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "file:"+console, "-kernel", kernel, "-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return TCG, "kvm probe: cannot start qemu: " + err.Error() + "; using tcg"
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL) // a no-op error once it has exited
		<-exited
	}()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, _ := os.ReadFile(console); bytes.Contains(b, []byte("Linux version")) {
			return KVM, fmt.Sprintf("kvm probe: kernel reached 'Linux version' under kvm in %.1fs", time.Since(start).Seconds())
		}
		select {
		case <-exited:
			return TCG, fmt.Sprintf("kvm probe: qemu exited under kvm before the kernel booted (%s); using tcg",
				bytes.TrimSpace(stderr.Bytes()))
		case <-deadline.C:
			return TCG, fmt.Sprintf("kvm probe: kernel did not reach 'Linux version' under kvm within %s; using tcg", timeout)
		case <-ctx.Done():
			return TCG, "kvm probe interrupted (" + ctx.Err().Error() + "); using tcg"
		case <-tick.C:
		}
	}
}

// Resolve turns a setting (kvm, tcg or auto) into the accelerator to use.
// kvm when /dev/kvm is unusable is an error: the operator asked for it.
func Resolve(ctx context.Context, setting, kernel string) (accel, reason string, err error) {
	switch setting {
	case TCG:
		return TCG, "set to tcg", nil
	case KVM:
		if ok, why := KVMUsable(); !ok {
			return "", "", fmt.Errorf("accelerator kvm requested but %s; use --accel tcg or auto", why)
		}
		return KVM, "set to kvm", nil
	case "auto", "":
		a, r := Probe(ctx, kernel, ProbeTimeout)
		return a, r, nil
	}
	return "", "", fmt.Errorf("unknown accelerator %q; use kvm, tcg or auto", setting)
}

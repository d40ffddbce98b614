package accel

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/hostinfo"
)

func TestResolveSettings(t *testing.T) {
	ctx := context.Background()
	if a, r, err := Resolve(ctx, "tcg", ""); err != nil || a != TCG || r == "" {
		t.Errorf("tcg = %s (%s), %v", a, r, err)
	}
	if _, _, err := Resolve(ctx, "hvf", ""); err == nil || !strings.Contains(err.Error(), "kvm, tcg or auto") {
		t.Errorf("unknown setting: %v", err)
	}
	ok, _ := KVMUsable()
	a, _, err := Resolve(ctx, "kvm", "")
	switch {
	case ok && (err != nil || a != KVM):
		t.Errorf("kvm with a usable /dev/kvm = %s, %v", a, err)
	case !ok && err == nil:
		t.Error("kvm without a usable /dev/kvm was accepted")
	}
	// auto without a kernel cannot boot anything: it decides on /dev/kvm
	// alone and says so.
	a, r, err := Resolve(ctx, "auto", "")
	if err != nil || (ok && (a != KVM || !strings.Contains(r, "not probed"))) || (!ok && a != TCG) {
		t.Errorf("auto without a kernel = %s (%s), %v", a, r, err)
	}
}

// fakeQEMU writes a shell script standing in for qemu-system-x86_64: it
// finds the -serial file: argument and runs body with $console set.
func fakeQEMU(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-qemu")
	script := `#!/bin/sh
for a in "$@"; do case "$a" in file:*) console="${a#file:}";; esac; done
` + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// The decision logic, against stand-ins for QEMU: no KVM needed.
func TestProbeDecisions(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no /bin/sh for the fake qemu")
	}
	for _, c := range []struct {
		name, body string
		timeout    time.Duration
		want, why  string
	}{
		{"banner", `printf 'Probing EDD\nLinux version 6.1.0\n' > "$console"; while :; do sleep 0.1; done`,
			5 * time.Second, KVM, "reached 'Linux version' under kvm"},
		{"hangs after the decompressor", `echo 'Decompressing Linux...' > "$console"; while :; do sleep 0.1; done`,
			500 * time.Millisecond, TCG, "did not reach 'Linux version' under kvm within 500ms; using tcg"},
		{"qemu fails", `echo 'qemu-system-x86_64: failed to initialize kvm: Operation not permitted' >&2; exit 1`,
			5 * time.Second, TCG, "exited under kvm before the kernel booted (qemu-system-x86_64: failed to initialize kvm"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			a, why := probe(context.Background(), fakeQEMU(t, c.body), "/boot/vmlinuz", dir, c.timeout)
			if a != c.want || !strings.Contains(why, c.why) {
				t.Errorf("probe = %s (%s); want %s (…%s…)", a, why, c.want, c.why)
			}
			if d := time.Since(start); d > c.timeout+2*time.Second {
				t.Errorf("probe took %s with a %s timeout", d, c.timeout)
			}
			if pids := procsMentioning(dir); len(pids) > 0 {
				t.Errorf("probe left processes running: %v", pids)
				killAll(pids)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		a, why := probe(ctx, fakeQEMU(t, `while :; do sleep 0.1; done`), "/boot/vmlinuz", dir, time.Minute)
		if a != TCG || !strings.Contains(why, "interrupted") {
			t.Errorf("cancelled probe = %s (%s); want tcg, interrupted", a, why)
		}
		if pids := procsMentioning(dir); len(pids) > 0 {
			t.Errorf("cancelled probe left processes running: %v", pids)
			killAll(pids)
		}
	})
}

// The real probe on this host's kernel. It prints how long it took: on a
// host whose KVM cannot boot Linux, that is the whole timeout.
func TestProbeRealKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make test installs it)")
	}
	kernel := hostinfo.NewestKernel()
	if kernel == "" {
		t.Skip("no kernel in /boot (make test installs linux-image-amd64)")
	}
	if ok, why := KVMUsable(); !ok {
		t.Skip(why)
	}
	dir := t.TempDir()
	start := time.Now()
	a, reason := probe(context.Background(), "qemu-system-x86_64", kernel, dir, 5*time.Second)
	t.Logf("probe of %s: %s (%s) in %.1fs", kernel, a, reason, time.Since(start).Seconds())
	if a != KVM && a != TCG || reason == "" {
		t.Errorf("probe = %q, %q", a, reason)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("probe took %s; its timeout was 5s", d)
	}
	if pids := procsMentioning(dir); len(pids) > 0 {
		t.Errorf("probe left its qemu running: %v", pids)
		killAll(pids)
	}
}

// procsMentioning lists the processes whose command line contains s.
func procsMentioning(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killAll(pids []int) {
	for _, pid := range pids {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
}

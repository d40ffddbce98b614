package accel

import (
	"context"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestResolveSettings(t *testing.T) {
	ctx := context.Background()
	if a, _, err := Resolve(ctx, "tcg", ""); err != nil || a != TCG {
		t.Errorf("tcg = %s, %v", a, err)
	}
	if _, _, err := Resolve(ctx, "hvf", ""); err == nil || !strings.Contains(err.Error(), "kvm, tcg or auto") {
		t.Errorf("unknown setting: %v", err)
	}
	if ok, _ := KVMUsable(); !ok {
		if _, _, err := Resolve(ctx, "kvm", ""); err == nil {
			t.Error("kvm without /dev/kvm was accepted")
		}
	}
}

// The probe returns an answer with a reason within its timeout, and never
// leaves its QEMU behind.
func TestProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make test installs it)")
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Strings(ks)
	if len(ks) == 0 {
		t.Skip("no kernel in /boot (make test installs linux-image-amd64)")
	}
	start := time.Now()
	a, reason := Probe(context.Background(), ks[len(ks)-1], 5*time.Second)
	t.Logf("probe: %s (%s) in %.1fs", a, reason, time.Since(start).Seconds())
	if a != KVM && a != TCG || reason == "" {
		t.Errorf("probe = %q, %q", a, reason)
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("probe took %s; its timeout was 5s", time.Since(start))
	}
}

package testguest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/godwit/godwit/internal/hostinfo"
)

var (
	forTestOnce  sync.Once
	forTestGuest Guest
	forTestErr   error
)

// ForTest returns a guest built once per test binary, in a temporary
// directory keyed by content so repeated runs reuse it. It builds
// cmd/godwit-guest from this module with `go build`. It skips the test,
// saying why, when the kernel, its modules or busybox are missing.
func ForTest(t testing.TB) Guest {
	t.Helper()
	if why := Missing(); why != "" {
		t.Skip(why)
	}
	forTestOnce.Do(func() { forTestGuest, forTestErr = buildForTest() })
	if forTestErr != nil {
		t.Fatal(forTestErr)
	}
	return forTestGuest
}

func buildForTest() (Guest, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	tmp, err := os.MkdirTemp("", "godwit-guest-build-")
	if err != nil {
		return Guest{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "godwit-guest")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/godwit-guest")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Guest{}, &buildError{out: string(out), err: err}
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return Guest{}, err
	}
	// Everything the initramfs is made of: a changed module list must not
	// reuse an old build.
	sum := sha256.Sum256(append(b, []byte(hostinfo.NewestKernel()+initScript+strings.Join(wantModules, " "))...))
	out := filepath.Join(os.TempDir(), "godwit-testguest-"+hex.EncodeToString(sum[:8]))
	g := Guest{Kernel: filepath.Join(out, "vmlinuz"), Initrd: filepath.Join(out, "initrd.img"), Cmdline: Cmdline}
	if _, err := os.Stat(g.Initrd); err == nil {
		return g, nil
	}
	return Build(context.Background(), Options{GuestBinary: bin, OutDir: out})
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string {
	return "go build ./cmd/godwit-guest: " + e.err.Error() + "\n" + e.out
}

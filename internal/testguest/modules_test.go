package testguest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/hostinfo"
)

// Every module the guest wants resolves on this kernel (a misspelt name
// would be skipped silently, as a built-in one is), each after the
// modules it needs: the pvpanic driver, the virtio NIC, isofs.
func TestWantModulesResolve(t *testing.T) {
	if why := Missing(); why != "" {
		t.Skip(why)
	}
	ver := strings.TrimPrefix(filepath.Base(hostinfo.NewestKernel()), "vmlinuz-")
	mods, err := resolveModules(filepath.Join("/lib/modules", ver), wantModules)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = strings.TrimSuffix(filepath.Base(m), ".ko")
	}
	for _, order := range [][]string{
		{"pvpanic", "pvpanic-mmio"},
		{"failover", "net_failover", "virtio_net"},
		{"cdrom", "isofs"},
	} {
		prev := -1
		for _, m := range order {
			i := slices.Index(names, m)
			if i < 0 || i < prev {
				t.Errorf("modules %v; want %v in this order", names, order)
				break
			}
			prev = i
		}
	}
}

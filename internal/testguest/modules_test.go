package testguest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/hostinfo"
)

// Every module the guest wants resolves on this kernel (a misspelt name
// would be skipped silently, as a built-in one is), the pvpanic driver
// after the common code it needs.
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
	common, driver := slices.Index(names, "pvpanic"), slices.Index(names, "pvpanic-mmio")
	if driver < 0 || common < 0 || common > driver {
		t.Errorf("modules %v; want pvpanic before pvpanic-mmio", names)
	}
}

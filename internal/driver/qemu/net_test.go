package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/hostnet"
)

// An agent that starts removes the taps (and their rules) of its own that
// no VM of its owns, and leaves every other tap alone: another agent's on
// the same machine, or the operator's.
func TestRecoverRemovesOrphanTaps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making taps needs root")
	}
	if err := hostnet.Check(true); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	state := t.TempDir()
	if err := os.MkdirAll(filepath.Join(state, "vms"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{StateDir: state, Accel: driver.AccelTCG, DirtySampleEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	bridge := "gwtest-orph"
	mine := d.tap("0ddba11e-0000-4000-8000-000000000001")
	theirs := tapName("0ddba11e-0000-4000-8000-000000000001", "ffff")
	if d.tapSalt == "ffff" {
		theirs = tapName("0ddba11e-0000-4000-8000-000000000001", "eeee")
	}
	t.Cleanup(func() {
		_ = hostnet.Unplug(ctx, mine)
		_ = hostnet.Unplug(ctx, theirs)
		_ = hostnet.DeleteBridge(ctx, bridge)
	})
	for i, tap := range []string{mine, theirs} {
		p := hostnet.Port{Tap: tap, Bridge: bridge, MTU: 1500, MAC: "02:00:00:00:00:0" + string(rune('1'+i)), IP: "10.250.1.2", Security: true}
		if err := hostnet.Plug(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	taps, err := hostnet.Taps(ctx, tapPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(taps, mine) {
		t.Errorf("orphan tap %s of this agent survived its recovery", mine)
	}
	if !slices.Contains(taps, theirs) {
		t.Errorf("another agent's tap %s was removed", theirs)
	}
	if out, err := exec.Command("nft", "list", "table", "bridge", "godwit_ps_"+mine).CombinedOutput(); err == nil {
		t.Errorf("the orphan's port-security table survived:\n%s", out)
	}
}

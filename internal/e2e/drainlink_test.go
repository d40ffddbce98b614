package e2e

import (
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// The controller is killed (SIGKILL, by the failpoint) while a drain's
// move waits for the source's link with its destination prepared, another
// move sending. After the restart recovery rolls the waiting move back
// (the source runs it, sending nothing; the destination's prepared copy
// is removed), the drain tries it again, and the intent ends completed
// with every VM on exactly one host other than host1. Fake driver.
func TestControllerKilledWaitingForLink(t *testing.T) {
	c := newCluster(t, clusterOpts{hosts: 3, driver: "fake"})
	vms, _ := c.intentVictims(3)
	c.armController("live/waiting-for-link")
	// 128 MiB at 100 MB/s: over a second a transfer, so the second move
	// is prepared while the first still sends.
	_, _ = c.client.Drain(bg, "host1", api.DrainRequest{BandwidthMBps: 100}) // the reply may never come
	out := c.intentAfterKill("live/waiting-for-link", vms, []string{"host1", "host2", "host3"})
	t.Logf("controller kill -9 while a move waits for the link → %s", out)
	if strings.HasPrefix(out, "step not reached") {
		t.Fatalf("the failpoint was not reached: %s", out)
	}
	ms, err := c.client.Migrations(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	waited := false
	for _, m := range ms {
		if strings.HasPrefix(m.Reason, "the controller restarted during "+string(api.MigWaitingLink)) {
			waited = true
			if m.State != api.MigRolledBack {
				t.Errorf("migration %s of %s waiting for the link ended %s; want rolled back: %s", m.ID, m.VM, m.State, m.Reason)
			}
		}
	}
	if !waited {
		t.Error("no migration was recovered from waiting-for-link")
	}
}

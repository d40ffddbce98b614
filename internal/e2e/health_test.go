package e2e

import (
	"fmt"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/guestlog"
)

// Every real-QEMU test asserts the health of its guests: no kernel
// trouble on the console (oops, BUG, general protection fault, panic), a
// heartbeat counter that carries on, no missing heartbeats, no lost
// writes (mem_bad, disk_bad), and a VM the controller does not report
// crashed. On QEMU before 9.0 TCG migrations broke this (docs/migration.md,
// "Guest crashes under TCG"); godwit now needs QEMU 9.0 or newer under
// TCG and these checks hold everywhere.

// healthy waits up to a minute for vm's console to show a heartbeat,
// then fails the test unless the guest ran without trouble and without a
// restart, its counter at least from (the last counter seen before a
// live move; 0 to skip that check). It returns what the console says.
func (c *cluster) healthy(vm string, from int64) guestlog.Health {
	c.t.Helper()
	h := c.health(vm)
	c.report(vm, h, h.Problems(from))
	return h
}

// noTrouble is healthy for a guest that restarted on purpose (a cold
// move, a reboot, a rebuild): the counter may go back; nothing else may
// be wrong.
func (c *cluster) noTrouble(vm string) guestlog.Health {
	c.t.Helper()
	h := c.health(vm)
	quiet := h
	quiet.Restarts = 0
	c.report(vm, h, quiet.Problems(0))
	return h
}

// health reads vm's whole console once it shows a heartbeat.
func (c *cluster) health(vm string) guestlog.Health {
	c.t.Helper()
	var h guestlog.Health
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if h = guestlog.Check(c.console(vm)); h.Beats > 0 || h.Trouble != "" || time.Now().After(deadline) {
			return h
		}
	}
}

// report fails the test with the problems found and the console around
// the first trouble (or its end), and on a VM the controller reports
// crashed.
func (c *cluster) report(vm string, h guestlog.Health, why []string) {
	c.t.Helper()
	if h.Beats == 0 {
		why = append(why, "no heartbeat on the console within a minute")
	}
	if got, err := c.client.VM(bg, vm); err == nil {
		if got.State == api.VMCrashed {
			why = append(why, "the controller reports the vm crashed: "+got.StateReason)
		}
		if p := got.LastPanic; p != nil {
			why = append(why, fmt.Sprintf("the guest panicked %d time(s), last on %s: %s", p.Count, p.Host, p.Reason))
		}
	}
	if len(why) == 0 {
		return
	}
	c.t.Errorf("vm %s is not healthy: %s; its console:\n%s", vm, strings.Join(why, "; "), c.consoleAround(vm, h.TroubleAt))
}

// consoleAround is vm's console around byte at (the oops, its registers
// and call trace come after the first line), or its end when at < 0.
func (c *cluster) consoleAround(vm string, at int) string {
	b := c.console(vm)
	if at < 0 || at > len(b) {
		return string(b[max(0, len(b)-3000):])
	}
	return string(b[max(0, at-1000):min(len(b), at+3000)])
}

// console is vm's whole console log, or the error reading it.
func (c *cluster) console(vm string) []byte {
	b, err := c.Console(bg, vm, 0)
	if err != nil {
		return []byte("(console: " + err.Error() + ")")
	}
	return b
}

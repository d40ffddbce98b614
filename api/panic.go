package api

import "time"

// Guest panic policies (VM.OnPanic): what a VM's host does when its guest
// kernel panics, which every VM tells its host through QEMU's pvpanic
// device. As libvirt's on_crash: restart is its restart, pause its
// preserve; none leaves the guest to itself (QEMU's -action panic=none).
const (
	// OnPanicRestart records the panic and resets the guest, so it boots
	// again: the default, as a physical server's watchdog or panic=N
	// would, because most workloads come back by rebooting and a VM left
	// down needs an operator; the panic stays visible (VM.LastPanic with
	// its count), so a guest that keeps panicking is not hidden.
	OnPanicRestart = "restart"
	// OnPanicPause records the panic and leaves the guest paused where it
	// panicked (state crashed) for inspection; reboot, start or stop it.
	OnPanicPause = "pause"
	// OnPanicNone records the panic and leaves the guest to its own
	// panic= setting (a reboot, or a hang).
	OnPanicNone = "none"
)

// OnPanicPolicies lists the valid values of OnPanic, the default first.
var OnPanicPolicies = []string{OnPanicRestart, OnPanicPause, OnPanicNone}

// GuestPanic is a guest kernel panic its host saw.
type GuestPanic struct {
	At     time.Time `json:"at"`     // the host's clock
	Reason string    `json:"reason"` // e.g. "guest panicked (pvpanic)"
	Host   string    `json:"host,omitempty"`
	// Count, on a VM, is how many panics the VM has had in all; absent on
	// a migration's.
	Count int `json:"count,omitempty"`
	// HostCount is the count of panics the host had reported for the VM
	// when this was recorded (its driver counts since the VM was defined
	// there): the host's next report adds only the panics beyond it.
	HostCount int `json:"host_count,omitempty"`
}

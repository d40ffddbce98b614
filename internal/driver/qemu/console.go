package qemu

import (
	"time"

	"github.com/godwit/godwit/internal/driver"
)

// Console logs. QEMU appends a VM's serial console to console.log in the
// VM's directory (-chardev file,append=on) for as long as the VM is
// defined here, so a guest that prints without end would fill the disk.
// The driver looks at every log every consoleCheckEvery and, past
// Config.ConsoleMax, cuts its head in place, keeping about the last half
// (driver.CapLog; QEMU keeps its file open). A log may therefore pass the
// limit by what the guest writes between two looks. Readers keep working
// (driver.OpenLog): offsets are logical, counted from the log's
// beginning, cut bytes included, so an offset a reader holds stays valid
// across a cut; one whose bytes were cut reads from the oldest kept byte.

const (
	defaultConsoleMax = 16 << 20
	consoleCheckEvery = 10 * time.Second
)

// capConsole caps v's console log, unless v is busy (it is looked at
// again next time).
func (d *Driver) capConsole(v *vm, max int64) {
	if !v.mu.TryLock() {
		return
	}
	path, name, gone := v.st.Launch.Console, v.st.Launch.Spec.Name, v.gone
	v.mu.Unlock()
	if gone || path == "" {
		return
	}
	n, err := driver.CapLog(path, max, max/2)
	switch {
	case err != nil:
		d.log.Warn("cap the console log", "vm", name, "err", err)
	case n > 0:
		d.log.Info("console log over its cap: its oldest part cut", "vm", name, "cut_bytes", n, "cap_bytes", max)
	}
}

package fake

import (
	"fmt"
	"os"
	"time"

	"github.com/godwit/godwit/internal/guestlog"
)

// heartbeats appends the test guest's heartbeat lines to the console at
// the configured rate until stop closes. The counter is derived from the
// boot's start time, so it carries on across driver restarts exactly as a
// real guest's does; after is the last counter already written.
func (d *Driver) heartbeats(st vmState, after int64, stop chan struct{}) {
	defer d.wg.Done()
	f, err := os.OpenFile(d.consolePath(st.Spec.ID), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.log.Error("open console", "vm", st.Spec.Name, "err", err)
		return
	}
	defer f.Close()
	if after == 0 {
		fmt.Fprintf(f, "godwit-guest start cmdline=%s\n", st.Spec.Cmdline)
	}
	diskMiB := 0
	if st.Spec.Disk != nil {
		diskMiB = st.Spec.Disk.SizeMiB
	}
	period := time.Second / time.Duration(d.cfg.HeartbeatHz)
	tick := time.NewTicker(period / 2)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		up := time.Since(st.StartedAt) - d.cfg.BootDelay
		if up < 0 {
			continue
		}
		for n := int64(up/period) + 1; after < n; {
			after++
			fmt.Fprintf(f, "godwit-guest hb=%d up_ms=%d cpus=%d mem_mib=%d disk_mib=%d disk_rec=0 disk_bad=0\n",
				after, (time.Duration(after-1) * period).Milliseconds(), st.Spec.VCPUs, st.Spec.MemoryMiB, diskMiB)
		}
	}
}

// counterAt is the heartbeat counter a guest booted at startedAt shows at
// time t.
func (d *Driver) counterAt(startedAt, t time.Time) int64 {
	up := t.Sub(startedAt) - d.cfg.BootDelay
	if up < 0 {
		return 0
	}
	return int64(up/(time.Second/time.Duration(d.cfg.HeartbeatHz))) + 1
}

// lastCounter returns the last heartbeat counter in a console log.
func lastCounter(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	hb, _ := guestlog.Last(f)
	return hb.Counter
}

package drivertest

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/guestlog"
)

// RunLiveMigration moves a running VM with a shared disk between two
// drivers (two hosts' state directories) and checks the guest carried on:
// its heartbeat counter continues on the destination from where it was,
// the source process is gone and the disk is still there. Then it checks
// a cancelled migration leaves the VM running on the source.
func RunLiveMigration(t *testing.T, h Harness) {
	src := h.New(t, t.TempDir())
	dst := h.New(t, t.TempDir())
	t.Cleanup(func() {
		for _, d := range []driver.Driver{src, dst} {
			_ = d.Delete(ctx, idA)
			d.Close()
		}
	})
	srcM, ok1 := src.(driver.LiveMigrator)
	dstM, ok2 := dst.(driver.LiveMigrator)
	if !ok1 || !ok2 || !src.Capabilities().LiveMigration {
		t.Skip("driver cannot live-migrate")
	}
	kernel, initrd, cmdline := h.Guest(t)
	spec := driver.VMSpec{ID: idA, Name: "a", VCPUs: 1, MemoryMiB: 128, Kernel: kernel, Initrd: initrd,
		Cmdline: cmdline + " dirty_mb=16 dirty_rate_mb=4",
		Disk:    &driver.Disk{Path: filepath.Join(t.TempDir(), "shared.qcow2"), SizeMiB: 64, Shared: true}}
	s := &suite{t: t, h: h, d: src}
	s.must(src.Create(ctx, spec))
	s.must(src.Start(ctx, idA))
	s.waitHeartbeat(idA, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 3 })
	opts := driver.MigrateOptions{MaxDowntime: 300 * time.Millisecond, BandwidthBytesPerS: 125 * api.MB} // capped: see docs/testing.md

	t.Run("CancelKeepsTheSource", func(t *testing.T) {
		s.t = t
		to, err := dstM.PrepareIncoming(ctx, spec, "127.0.0.1", opts)
		s.must(err)
		// A bandwidth this low cannot finish before the cancel.
		s.must(srcM.MigrateOut(ctx, idA, to, driver.MigrateOptions{BandwidthBytesPerS: 1 << 20}))
		s.must(srcM.CancelMigration(ctx, idA))
		waitMigration(t, srcM, driver.MigrationCancelled)
		s.must(dstM.Release(ctx, idA))
		before := s.heartbeat(idA)
		s.waitHeartbeat(idA, func(hb guestlog.Heartbeat) bool { return hb.Counter > before.Counter+2 })
		if st := s.status(idA); st.State != driver.StateRunning {
			t.Fatalf("source after a cancelled migration: %s", st.State)
		}
	})

	t.Run("MoveKeepsTheGuestRunning", func(t *testing.T) {
		s.t = t
		before := s.heartbeat(idA)
		to, err := dstM.PrepareIncoming(ctx, spec, "127.0.0.1", opts)
		s.must(err)
		s.must(srcM.MigrateOut(ctx, idA, to, opts))
		st := waitMigration(t, srcM, driver.MigrationCompleted)
		s.must(dstM.SwitchOver(ctx, idA, 30*time.Second))
		s.must(srcM.Release(ctx, idA))
		t.Logf("migrated %d MiB in %s, downtime %s, %d passes, strategy %s",
			st.MemoryTransferred>>20, st.TotalTime, st.Downtime, st.Pass, st.Strategy)
		if st.MemoryTransferred == 0 || st.Strategy == "" {
			t.Errorf("completed status lacks figures: %+v", st)
		}
		if _, err := src.Status(ctx, idA); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("source still knows the vm after release: %v", err)
		}
		s.d = dst
		after := s.waitHeartbeat(idA, func(hb guestlog.Heartbeat) bool { return hb.Counter > before.Counter+2 })
		first := firstHeartbeat(s, idA)
		if first.Counter <= before.Counter/2 || first.DiskBad != 0 {
			t.Errorf("destination's first heartbeat %+v; the source had reached %d: the guest restarted?", first, before.Counter)
		}
		t.Logf("heartbeat %d on the source before, %d first on the destination, %d later", before.Counter, first.Counter, after.Counter)
		if dst := s.status(idA); dst.State != driver.StateRunning {
			t.Errorf("destination state %s", dst.State)
		}
		if _, err := filepath.Glob(spec.Disk.Path); err != nil {
			t.Error(err)
		}
	})
}

// waitMigration waits for the outgoing migration of idA to reach want.
// A driver that says when a migration changes (driver.MigrationNotifier)
// is not polled: it must signal the end, or the wait fails.
func waitMigration(t *testing.T, m driver.LiveMigrator, want string) driver.MigrationStatus {
	t.Helper()
	n, notifies := m.(driver.MigrationNotifier)
	deadline := time.NewTimer(120 * time.Second)
	defer deadline.Stop()
	for {
		var changed <-chan struct{}
		if notifies {
			var err error
			if changed, err = n.MigrationChanged(ctx, idA); err != nil {
				t.Fatal(err)
			}
		}
		st, err := m.MigrationStatus(ctx, idA)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == want {
			return st
		}
		if st.Status != driver.MigrationActive {
			t.Fatalf("migration status %s (%s); want %s", st.Status, st.Error, want)
		}
		var poll <-chan time.Time
		if !notifies {
			poll = time.After(100 * time.Millisecond)
		}
		select {
		case <-changed:
		case <-poll:
		case <-deadline.C:
			t.Fatalf("migration still %s after 120 s (no change signalled: %v); want %s", st.Status, notifies, want)
		}
	}
}

// firstHeartbeat is the first heartbeat line on the console.
func firstHeartbeat(s *suite, id string) guestlog.Heartbeat {
	rc, err := s.d.Console(ctx, id, 0)
	s.must(err)
	defer rc.Close()
	return guestlog.First(rc)
}

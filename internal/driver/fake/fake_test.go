package fake_test

import (
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/drivertest"
	"github.com/godwit/godwit/internal/driver/fake"
)

func newFake(t *testing.T, dir string, f *fake.Faults) *fake.Driver {
	d, err := fake.New(fake.Config{StateDir: dir, Faults: f, BootDelay: 20 * time.Millisecond, HeartbeatHz: 20})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		New:         func(t *testing.T, dir string) driver.Driver { return newFake(t, dir, nil) },
		Guest:       func(t *testing.T) (string, string, string) { return "", "", "console=ttyS0" },
		BootTimeout: 5 * time.Second,
	})
}

func TestLiveMigration(t *testing.T) {
	drivertest.RunLiveMigration(t, drivertest.Harness{
		New:         func(t *testing.T, dir string) driver.Driver { return newFake(t, dir, nil) },
		Guest:       func(t *testing.T) (string, string, string) { return "", "", "console=ttyS0" },
		BootTimeout: 5 * time.Second,
	})
}

func TestResize(t *testing.T) {
	drivertest.RunResize(t, drivertest.Harness{
		New:         func(t *testing.T, dir string) driver.Driver { return newFake(t, dir, nil) },
		Guest:       func(t *testing.T) (string, string, string) { return "", "", "console=ttyS0" },
		BootTimeout: 5 * time.Second,
	})
}

// The migration stream is held for the whole transfer: a destination
// that goes away mid-transfer (here it releases its copy; an agent killed
// takes its listener with it) fails the source's migration then, not at
// a switch-over the modelled transfer would reach minutes later.
func TestDestinationGoneFailsMigration(t *testing.T) {
	src, dst := newFake(t, t.TempDir(), nil), newFake(t, t.TempDir(), nil)
	t.Cleanup(func() { src.Close(); dst.Close() })
	start(t, src)
	to, err := dst.PrepareIncoming(ctx, spec(), "127.0.0.1", driver.MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 128 MiB at 1 MiB/s: over two minutes of transfer.
	if err := src.MigrateOut(ctx, vmID, to, driver.MigrateOptions{BandwidthBytesPerS: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	waitStatus := func(want string) driver.MigrationStatus {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			st, err := src.MigrationStatus(ctx, vmID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status == want && (want != driver.MigrationActive || st.MemoryTransferred > 0) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("migration %s (%s); want %s", st.Status, st.Error, want)
			}
		}
	}
	waitStatus(driver.MigrationActive)
	if err := dst.Release(ctx, vmID); err != nil {
		t.Fatal(err)
	}
	if st := waitStatus(driver.MigrationFailed); !strings.Contains(st.Error, "destination unreachable") {
		t.Errorf("migration failed with %q; want the destination unreachable", st.Error)
	}
	if st, err := src.Status(ctx, vmID); err != nil || st.State != driver.StateRunning {
		t.Errorf("source after the failed migration: %s (%v); want running", st.State, err)
	}
}

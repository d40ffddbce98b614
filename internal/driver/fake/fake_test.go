package fake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/drivertest"
	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/errs"
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

func TestFaults(t *testing.T) {
	ctx := context.Background()
	f := &fake.Faults{}
	d := newFake(t, t.TempDir(), f)
	defer d.Close()
	spec := driver.VMSpec{ID: "x", Name: "x", VCPUs: 1, MemoryMiB: 128}
	if err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	boom := errs.Unavailable("qemu would not start")
	f.Fail("Start", 2, boom)
	for i := 0; i < 2; i++ {
		if err := d.Start(ctx, "x"); !errors.Is(err, errs.ErrUnavailable) {
			t.Fatalf("start %d: %v; want the injected failure", i, err)
		}
	}
	if err := d.Start(ctx, "x"); err != nil {
		t.Fatalf("third start: %v; the fault was for two calls", err)
	}
	if err := d.Crash(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Status(ctx, "x"); st.State != driver.StateCrashed || st.PID != 0 {
		t.Errorf("after crash: %s pid %d", st.State, st.PID)
	}
	f.Delay("Stop", time.Second)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := d.Stop(cctx, "x", driver.StopOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("delayed stop with a short deadline: %v; want deadline exceeded", err)
	}
}

func TestLiveMigration(t *testing.T) {
	drivertest.RunLiveMigration(t, drivertest.Harness{
		New:         func(t *testing.T, dir string) driver.Driver { return newFake(t, dir, nil) },
		Guest:       func(t *testing.T) (string, string, string) { return "", "", "console=ttyS0" },
		BootTimeout: 5 * time.Second,
	})
}

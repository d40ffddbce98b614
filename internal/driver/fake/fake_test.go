package fake_test

import (
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

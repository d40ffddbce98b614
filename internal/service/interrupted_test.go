package service

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
)

// A create a controller restart cut off is finished by the next
// heartbeat of its host: the record takes the state the host reports, or
// is removed when the host never got the VM (nobody was told it exists).
// A create still in its grace, or an evacuation's rebuild, is left alone.
func TestInterruptedCreateRecovered(t *testing.T) {
	ctx := context.Background()
	c, err := New(ctx, Config{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	old, now := time.Now().UTC().Add(-time.Minute), time.Now().UTC()
	vm := func(name, id string, updated time.Time) api.VM {
		return api.VM{ID: id, Name: name, Host: "host1", Image: "guest", State: api.VMCreating, DesiredState: api.VMRunning,
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}, CreatedAt: updated, UpdatedAt: updated}
	}
	for _, v := range []api.VM{vm("lost", "id-lost", old), vm("arrived", "id-arrived", old), vm("fresh", "id-fresh", now), vm("rebuilt", "id-rebuilt", old)} {
		if err := c.store.CreateVM(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.store.CreateIntent(ctx, api.Intent{ID: "in-1", Kind: api.IntentEvacuate, Target: "host9", State: api.IntentRunning, CreatedAt: old,
		Operations: []api.Operation{{VM: "rebuilt", Kind: api.OpRebuild, State: api.OpRunning, Source: "host9", Destination: "host1"}}}); err != nil {
		t.Fatal(err)
	}
	reports := []hostapi.VMReport{{ID: "id-arrived", Name: "arrived", State: "running", PID: 42}}
	if _, err := c.reconcileReports(ctx, "host1", reports); err != nil {
		t.Fatal(err)
	}
	if _, err := c.store.VM(ctx, "lost"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("a create its host never got: record %v; want it removed", err)
	}
	for name, want := range map[string]string{"arrived": api.VMRunning, "fresh": api.VMCreating, "rebuilt": api.VMCreating} {
		got, err := c.store.VM(ctx, name)
		if err != nil || got.State != want {
			t.Errorf("%s: %s (%v); want %s", name, got.State, err, want)
		}
	}
}

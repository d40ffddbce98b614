package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver/fake"
)

// A guest kernel panic reaches the VM record through its host's
// heartbeats: on-panic pause shows the VM crashed with the reason until a
// reboot; restart (the default) keeps it running with the last panic and
// its count; and a panic just after a migration is on the migration too.
func TestGuestPanic(t *testing.T) {
	f1, f2 := &fake.Faults{}, &fake.Faults{}
	tc := newTestClusterWith(t, clusterOptions{faults: []*fake.Faults{f1, f2}}, 2, 1024, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	create := func(name, policy string) api.VM {
		t.Helper()
		vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Host: "host1", Pool: api.PoolShared,
			OnPanic: policy, Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}})
		if err != nil {
			t.Fatal(err)
		}
		return vm
	}
	vmIs := func(name string, ok func(api.VM) error) func() error {
		return func() error {
			vm, err := tc.client.VM(ctx, name)
			if err != nil {
				return err
			}
			return ok(vm)
		}
	}

	t.Run("pause", func(t *testing.T) {
		vm := create("held", api.OnPanicPause)
		if vm.OnPanic != api.OnPanicPause {
			t.Errorf("on_panic %q; want pause", vm.OnPanic)
		}
		f1.Panic(vm.ID, "")
		waitFor(t, 20*time.Second, "the vm crashed", vmIs("held", func(v api.VM) error {
			if v.State != api.VMCrashed || v.PID == 0 || !strings.Contains(v.StateReason, "guest panicked (pvpanic)") ||
				!strings.Contains(v.StateReason, "reboot") {
				return fmt.Errorf("state %s (%s) pid %d", v.State, v.StateReason, v.PID)
			}
			if p := v.LastPanic; p == nil || p.Count != 1 || p.Host != "host1" || p.Reason != "guest panicked (pvpanic)" {
				return fmt.Errorf("last panic %+v", p)
			}
			return nil
		}))
		// A reboot lets it run again; the panic stays on record.
		v, err := tc.client.VMAction(ctx, "held", "reboot", api.VMActionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if v.State != api.VMRunning || v.LastPanic == nil || v.LastPanic.Count != 1 {
			t.Errorf("after the reboot: %s, last panic %+v; want running, the panic kept", v.State, v.LastPanic)
		}
	})

	t.Run("restart", func(t *testing.T) {
		vm := create("looping", "") // the default
		if vm.OnPanic != api.OnPanicRestart {
			t.Errorf("on_panic %q; want the default, restart", vm.OnPanic)
		}
		f1.Panic(vm.ID, "Fatal exception")
		waitFor(t, 20*time.Second, "the panic recorded", vmIs("looping", func(v api.VM) error {
			if v.LastPanic == nil || v.LastPanic.Count != 1 || v.LastPanic.Reason != "Fatal exception" {
				return fmt.Errorf("last panic %+v", v.LastPanic)
			}
			return nil
		}))
		f1.Panic(vm.ID, "Fatal exception")
		waitFor(t, 20*time.Second, "the second panic counted, the vm running", vmIs("looping", func(v api.VM) error {
			if v.LastPanic == nil || v.LastPanic.Count != 2 {
				return fmt.Errorf("last panic %+v", v.LastPanic)
			}
			if v.State != api.VMRunning || v.StateReason != "" {
				return fmt.Errorf("state %s (%s)", v.State, v.StateReason)
			}
			return nil
		}))
	})

	t.Run("after a migration", func(t *testing.T) {
		vm := create("mover", api.OnPanicPause)
		m, err := tc.client.Migrate(ctx, "mover", api.MigrateRequest{Kind: api.KindLive, To: "host2"})
		if err != nil {
			t.Fatal(err)
		}
		if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
			t.Fatalf("migration %s (%s)", m.State, m.Reason)
		}
		f2.Panic(vm.ID, "") // on the destination, right after the move
		waitFor(t, 20*time.Second, "the panic on the migration", func() error {
			got, err := tc.client.Migration(ctx, m.ID)
			if err != nil {
				return err
			}
			if p := got.GuestPanic; p == nil || p.Host != "host2" || p.Reason != "guest panicked (pvpanic)" || p.At.Before(got.FinishedAt) {
				return fmt.Errorf("guest panic %+v (finished %s)", p, got.FinishedAt)
			}
			return nil
		})
		// The destination's policy is the VM's: held there.
		waitFor(t, 20*time.Second, "the vm crashed on host2", vmIs("mover", func(v api.VM) error {
			if v.State != api.VMCrashed || v.Host != "host2" || v.LastPanic == nil || v.LastPanic.Count != 1 {
				return fmt.Errorf("%s on %s, last panic %+v", v.State, v.Host, v.LastPanic)
			}
			return nil
		}))
		// An older migration is not blamed for a later panic.
		if ms, _ := tc.client.Migrations(ctx, "held"); len(ms) != 0 {
			t.Errorf("migrations of held: %+v", ms)
		}
	})
}

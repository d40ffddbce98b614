package controller_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// Stored flavors are made (an ID generated or given), listed by name,
// found by name or ID, refused when a name or ID is taken or the request
// makes no sense (each refusal a 4xx that says what to do, changing
// nothing), and deleted.
func TestFlavors(t *testing.T) {
	tc := newTestCluster(t, 1, 1024)
	ctx := context.Background()
	small, err := tc.client.CreateFlavor(ctx, api.CreateFlavorRequest{Name: "small", VCPUs: 1, MemoryMiB: 256, DiskMiB: 64, Description: "one vCPU"})
	if err != nil {
		t.Fatal(err)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(small.ID) || small.Flavor != (api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}) ||
		small.Description != "one vCPU" || time.Since(small.CreatedAt) > time.Minute {
		t.Errorf("created %+v; want a generated UUID, the sizes, the description and the time", small)
	}
	if _, err := tc.client.CreateFlavor(ctx, api.CreateFlavorRequest{Name: "large", ID: "3", VCPUs: 2, MemoryMiB: 512, DiskMiB: 128}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		req  api.CreateFlavorRequest
		code int
		says string
	}{
		{api.CreateFlavorRequest{Name: "small", VCPUs: 2, MemoryMiB: 64}, http.StatusConflict, `flavor "small" already exists (id ` + small.ID},
		{api.CreateFlavorRequest{Name: "other", ID: "3", VCPUs: 2, MemoryMiB: 64}, http.StatusConflict, `flavor id "3" is taken by flavor "large"`},
		{api.CreateFlavorRequest{Name: "3", VCPUs: 2, MemoryMiB: 64}, http.StatusConflict, `flavor name "3" is the id of flavor "large"`},
		{api.CreateFlavorRequest{Name: "other", ID: "small", VCPUs: 2, MemoryMiB: 64}, http.StatusConflict, `flavor id "small" is the name of flavor "small"`},
		{api.CreateFlavorRequest{Name: "", VCPUs: 1, MemoryMiB: 64}, http.StatusBadRequest, "flavor name is empty"},
		{api.CreateFlavorRequest{Name: "m1 small", VCPUs: 1, MemoryMiB: 64}, http.StatusBadRequest, "use letters, digits, '.', '_' and '-'"},
		{api.CreateFlavorRequest{Name: "x", VCPUs: 0, MemoryMiB: 64}, http.StatusBadRequest, "vcpus must be between 1 and"},
		{api.CreateFlavorRequest{Name: "x", VCPUs: 1, MemoryMiB: 16}, http.StatusBadRequest, "memory_mib must be between 64 and"},
		{api.CreateFlavorRequest{Name: "x", VCPUs: 1, MemoryMiB: 64, DiskMiB: -1}, http.StatusBadRequest, "disk_mib must be between 0 (no disk)"},
		{api.CreateFlavorRequest{Name: "x", ID: "../x", VCPUs: 1, MemoryMiB: 64}, http.StatusBadRequest, "leave it out to have one generated"},
		{api.CreateFlavorRequest{Name: "x", ID: strings.Repeat("a", 256), VCPUs: 1, MemoryMiB: 64}, http.StatusBadRequest, "at most 255"},
		{api.CreateFlavorRequest{Name: "x", VCPUs: 1, MemoryMiB: 64, Description: "a\x1b[2Jb"}, http.StatusBadRequest, "control character"},
	} {
		_, err := tc.client.CreateFlavor(ctx, c.req)
		var e *api.Error
		if !errors.As(err, &e) || e.Status != c.code || !strings.Contains(e.Message, c.says) {
			t.Errorf("create %+v: %v; want %d saying %q", c.req, err, c.code, c.says)
		}
	}
	fs, err := tc.client.Flavors(ctx)
	if err != nil || len(fs) != 2 || fs[0].Name != "large" || fs[1] != small {
		t.Fatalf("flavors after the refusals = %+v, %v; want large and small, by name", fs, err)
	}
	for _, key := range []string{"small", small.ID} {
		if f, err := tc.client.Flavor(ctx, key); err != nil || f != small {
			t.Errorf("flavor %q = %+v, %v; want %+v", key, f, err, small)
		}
	}
	_, err = tc.client.Flavor(ctx, "medium")
	wantAPIError(t, err, http.StatusNotFound, "list flavors with: godwit flavor list")

	if err := tc.client.DeleteFlavor(ctx, "3"); err != nil {
		t.Fatalf("delete by ID: %v", err)
	}
	if err := tc.client.DeleteFlavor(ctx, "small"); err != nil {
		t.Fatalf("delete by name: %v", err)
	}
	wantAPIError(t, tc.client.DeleteFlavor(ctx, "small"), http.StatusNotFound, "godwit flavor list")
	if fs, err := tc.client.Flavors(ctx); err != nil || len(fs) != 0 {
		t.Errorf("flavors after deleting both = %+v, %v", fs, err)
	}
}

// A VM made from a flavor gets its sizes and records its name (named by
// ID too); sizes and a flavor together, or an unknown flavor, are
// refused. A resize may name a flavor: the VM then has its sizes and
// records it, and a resize by sizes clears it. Deleting the flavor leaves
// the VM as it is.
func TestVMFlavors(t *testing.T) {
	tc := newTestCluster(t, 1, 4096)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, req := range []api.CreateFlavorRequest{
		{Name: "small", ID: "2", VCPUs: 1, MemoryMiB: 256, DiskMiB: 64},
		{Name: "large", ID: "3", VCPUs: 2, MemoryMiB: 512, DiskMiB: 128},
		{Name: "nodisk", ID: "1", VCPUs: 1, MemoryMiB: 64},
	} {
		if _, err := tc.client.CreateFlavor(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	create := func(name string, f api.Flavor, flavor string) (api.VM, error) {
		return tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Pool: api.PoolShared, Flavor: f, FlavorName: flavor})
	}
	vm, err := create("app", api.Flavor{}, "small")
	if err != nil {
		t.Fatal(err)
	}
	if vm.Flavor != (api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}) || vm.FlavorName != "small" || vm.MaxVCPUs != 4 {
		t.Errorf("vm of flavor small: flavor %+v, flavor_name %q, max_vcpus %d", vm.Flavor, vm.FlavorName, vm.MaxVCPUs)
	}
	if h, _ := tc.client.Host(ctx, "host1"); h.AllocatedMemoryMiB != 256 {
		t.Errorf("host1 allocated %d MiB; want the flavor's 256", h.AllocatedMemoryMiB)
	}
	if byID, err := create("by-id", api.Flavor{}, "1"); err != nil || byID.FlavorName != "nodisk" || byID.Flavor.MemoryMiB != 64 {
		t.Errorf("vm of flavor ID 1: %+v, %v; want flavor nodisk's sizes and name", byID, err)
	}
	_, err = create("both", api.Flavor{VCPUs: 1, MemoryMiB: 64}, "small")
	wantAPIError(t, err, http.StatusBadRequest, "not both")
	_, err = create("unknown", api.Flavor{}, "medium")
	wantAPIError(t, err, http.StatusNotFound, `flavor "medium" not found; list flavors with: godwit flavor list`)
	if vms, _ := tc.client.VMs(ctx); len(vms) != 2 {
		t.Errorf("%d VMs after the refusals; want 2", len(vms))
	}

	_, err = tc.client.Resize(ctx, "app", api.ResizeRequest{FlavorName: "large", VCPUs: 2})
	wantAPIError(t, err, http.StatusBadRequest, "not both")
	_, err = tc.client.Resize(ctx, "app", api.ResizeRequest{FlavorName: "medium"})
	wantAPIError(t, err, http.StatusNotFound, "godwit flavor list")
	_, err = tc.client.Resize(ctx, "app", api.ResizeRequest{FlavorName: "nodisk", AllowRestart: true})
	wantAPIError(t, err, http.StatusBadRequest, `flavor "nodisk" has no disk`)
	_, err = tc.client.Resize(ctx, "app", api.ResizeRequest{FlavorName: "2"})
	wantAPIError(t, err, http.StatusBadRequest, "nothing to change")

	resize := func(req api.ResizeRequest) api.VM {
		t.Helper()
		in, err := tc.client.Resize(ctx, "app", req)
		if err != nil {
			t.Fatal(err)
		}
		if in = waitIntent(t, tc.client, in.ID, 30*time.Second); in.State != api.IntentCompleted {
			t.Fatalf("resize %+v ended %s: %+v", req, in.State, in.Operations)
		}
		got, err := tc.client.VM(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// Memory above the hotplug ceiling: a restart in place.
	if got := resize(api.ResizeRequest{FlavorName: "3", AllowRestart: true}); got.Flavor != (api.Flavor{VCPUs: 2, MemoryMiB: 512, DiskMiB: 128}) || got.FlavorName != "large" {
		t.Errorf("after resize to flavor large (by ID): flavor %+v, flavor_name %q", got.Flavor, got.FlavorName)
	}
	if got := resize(api.ResizeRequest{VCPUs: 3}); got.Flavor.VCPUs != 3 || got.FlavorName != "" {
		t.Errorf("after resize by sizes: flavor %+v, flavor_name %q; want 3 vCPUs and no flavor name", got.Flavor, got.FlavorName)
	}
	resize(api.ResizeRequest{FlavorName: "large"})

	if err := tc.client.DeleteFlavor(ctx, "large"); err != nil {
		t.Fatalf("delete a flavor a VM was made from: %v", err)
	}
	if got, err := tc.client.VM(ctx, "app"); err != nil || got.Flavor != (api.Flavor{VCPUs: 2, MemoryMiB: 512, DiskMiB: 128}) || got.FlavorName != "large" {
		t.Errorf("vm after its flavor was deleted: %+v, %v; want it as it was", got, err)
	}
}

package controller_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// A VM's display name and description are free text beside its name:
// given at create (any Unicode, spaces), changed and cleared with PATCH
// /v1/vms/{name} (a field left out keeps its value), refused past 255
// characters or with a control character (400 saying what to do,
// changing nothing), and not unique; the VM's name never changes.
func TestVMDisplayNameAndDescription(t *testing.T) {
	tc := newTestCluster(t, 1, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	cl := tc.client
	flavor := api.Flavor{VCPUs: 1, MemoryMiB: 64}

	shown := "Web shop – Zürich 🚀 (staging)"
	vm, err := cl.CreateVM(ctx, api.CreateVMRequest{Name: "web-1", Image: "guest", Flavor: flavor,
		DisplayName: shown, Description: "front end, 2nd rack"})
	if err != nil {
		t.Fatal(err)
	}
	if vm.Name != "web-1" || vm.DisplayName != shown || vm.Description != "front end, 2nd rack" {
		t.Fatalf("created %q / %q / %q; want the name, the display name and the description as given", vm.Name, vm.DisplayName, vm.Description)
	}
	// Not unique: a second VM may have the same display name.
	if _, err := cl.CreateVM(ctx, api.CreateVMRequest{Name: "web-2", Image: "guest", Flavor: flavor, DisplayName: shown}); err != nil {
		t.Fatalf("a second VM with the same display name: %v", err)
	}
	if got, err := cl.VM(ctx, "web-1"); err != nil || got.DisplayName != shown || got.Description != "front end, 2nd rack" {
		t.Fatalf("vm web-1 = %+v, %v", got, err)
	}

	renamed := "Вебсервер 東京 " + strings.Repeat("é", 242) // 255 characters, 510 bytes: the bound is characters
	vm, err = cl.UpdateVM(ctx, "web-1", api.UpdateVMRequest{DisplayName: &renamed})
	if err != nil {
		t.Fatal(err)
	}
	if vm.Name != "web-1" || vm.DisplayName != renamed || vm.Description != "front end, 2nd rack" {
		t.Fatalf("after changing the display name: %q / %q / %q; want the new display name, the description kept", vm.Name, vm.DisplayName, vm.Description)
	}
	empty := ""
	if vm, err = cl.UpdateVM(ctx, "web-1", api.UpdateVMRequest{Description: &empty}); err != nil || vm.Description != "" || vm.DisplayName != renamed {
		t.Fatalf("after clearing the description: %+v, %v; want it empty, the display name kept", vm, err)
	}
	// Nothing given: nothing changes.
	if vm, err = cl.UpdateVM(ctx, "web-1", api.UpdateVMRequest{}); err != nil || vm.DisplayName != renamed {
		t.Fatalf("an empty update: %+v, %v", vm, err)
	}

	long := strings.Repeat("x", 256)
	ctl := "web\x1b[2J"
	nl := "two\nlines"
	for _, c := range []struct {
		req  api.UpdateVMRequest
		says string
	}{
		{api.UpdateVMRequest{DisplayName: &long}, "display_name is 256 characters; use at most 255"},
		{api.UpdateVMRequest{Description: &long}, "description is 256 characters; use at most 255"},
		{api.UpdateVMRequest{DisplayName: &ctl}, "display_name holds control character U+001B; use plain text on one line"},
		{api.UpdateVMRequest{Description: &nl}, "description holds control character U+000A; use plain text on one line"},
		// One bad field refuses the whole request.
		{api.UpdateVMRequest{DisplayName: &empty, Description: &ctl}, "description holds control character"},
	} {
		_, err := cl.UpdateVM(ctx, "web-1", c.req)
		wantAPIError(t, err, http.StatusBadRequest, c.says)
	}
	for _, c := range []struct {
		req  api.CreateVMRequest
		says string
	}{
		{api.CreateVMRequest{Name: "web-3", Image: "guest", Flavor: flavor, DisplayName: strings.Repeat("ü", 256)}, "display_name is 256 characters; use at most 255"},
		{api.CreateVMRequest{Name: "web-3", Image: "guest", Flavor: flavor, Description: "bell\a"}, "description holds control character U+0007"},
	} {
		_, err := cl.CreateVM(ctx, c.req)
		wantAPIError(t, err, http.StatusBadRequest, c.says)
	}
	if _, err := cl.VM(ctx, "web-3"); err == nil {
		t.Error("a refused create left vm web-3 behind")
	}
	if vm, err = cl.VM(ctx, "web-1"); err != nil || vm.DisplayName != renamed || vm.Description != "" {
		t.Fatalf("after the refusals: %+v, %v; want nothing changed", vm, err)
	}

	// On the wire: null leaves a field as is; a control character sent
	// as a JSON escape is refused as well.
	if code, e := tc.raw(t, "PATCH", "/v1/vms/web-1", api.MediaJSON, `{"display_name":null,"description":"plain"}`); code != http.StatusOK {
		t.Fatalf("PATCH with null: HTTP %d: %s", code, e.Message)
	}
	if vm, err = cl.VM(ctx, "web-1"); err != nil || vm.DisplayName != renamed || vm.Description != "plain" {
		t.Fatalf("after PATCH with null: %+v, %v", vm, err)
	}
	if code, e := tc.raw(t, "PATCH", "/v1/vms/web-1", api.MediaJSON, `{"display_name":"tab\there"}`); code != http.StatusBadRequest ||
		!strings.Contains(e.Message, "display_name holds control character U+0009") {
		t.Errorf("PATCH with a tab: HTTP %d %q; want 400 naming the character", code, e.Message)
	}

	// A VM that does not exist: the message of every VM lookup.
	_, err = cl.UpdateVM(ctx, "nope", api.UpdateVMRequest{DisplayName: &shown})
	wantAPIError(t, err, http.StatusNotFound, `vm "nope" not found; list VMs with: godwit vm list`)
	_, err = cl.UpdateVM(ctx, "nope", api.UpdateVMRequest{})
	wantAPIError(t, err, http.StatusNotFound, `vm "nope" not found; list VMs with: godwit vm list`)
}

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

// A VM's access addresses are recorded, not configured: given at create
// or with PATCH /v1/vms/{name}, kept in canonical form ("2001:DB8::1" is
// 2001:db8::1), cleared with "", left alone when not given; an address
// of the wrong family or no address is refused with 400 saying what a
// valid one looks like, changing nothing.
func TestVMAccessIPs(t *testing.T) {
	tc := newTestCluster(t, 1, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	cl := tc.client
	flavor := api.Flavor{VCPUs: 1, MemoryMiB: 64}

	vm, err := cl.CreateVM(ctx, api.CreateVMRequest{Name: "web-1", Image: "guest", Flavor: flavor,
		AccessIPv4: "203.0.113.10", AccessIPv6: "2001:DB8:0:0::1"})
	if err != nil {
		t.Fatal(err)
	}
	if vm.AccessIPv4 != "203.0.113.10" || vm.AccessIPv6 != "2001:db8::1" {
		t.Fatalf("created with access %q / %q; want 203.0.113.10 / 2001:db8::1", vm.AccessIPv4, vm.AccessIPv6)
	}
	if got, err := cl.VM(ctx, "web-1"); err != nil || got.AccessIPv4 != "203.0.113.10" || got.AccessIPv6 != "2001:db8::1" {
		t.Fatalf("vm web-1 = %+v, %v", got, err)
	}
	// Recorded, not configured: the VM's NICs keep their own addresses.
	for _, p := range vm.Ports {
		if p.IP == vm.AccessIPv4 || p.IP == vm.AccessIPv6 {
			t.Errorf("port %+v took the access address", p)
		}
	}

	v4, v6 := "198.51.100.7", "2001:DB8:0:0:0:0:0:AB"
	if vm, err = cl.UpdateVM(ctx, "web-1", api.UpdateVMRequest{AccessIPv4: &v4}); err != nil ||
		vm.AccessIPv4 != "198.51.100.7" || vm.AccessIPv6 != "2001:db8::1" {
		t.Fatalf("after changing access_ipv4: %+v, %v; want it changed, access_ipv6 kept", vm, err)
	}
	if vm, err = cl.UpdateVM(ctx, "web-1", api.UpdateVMRequest{AccessIPv6: &v6}); err != nil ||
		vm.AccessIPv6 != "2001:db8::ab" || vm.AccessIPv4 != "198.51.100.7" {
		t.Fatalf("after changing access_ipv6: %+v, %v; want 2001:db8::ab, access_ipv4 kept", vm, err)
	}
	// Another field changed: the addresses stay.
	shown := "Web"
	if vm, err = cl.UpdateVM(ctx, "web-1", api.UpdateVMRequest{DisplayName: &shown}); err != nil ||
		vm.AccessIPv4 != "198.51.100.7" || vm.AccessIPv6 != "2001:db8::ab" {
		t.Fatalf("after changing the display name: %+v, %v; want the access addresses kept", vm, err)
	}
	empty := ""
	if vm, err = cl.UpdateVM(ctx, "web-1", api.UpdateVMRequest{AccessIPv4: &empty}); err != nil || vm.AccessIPv4 != "" || vm.AccessIPv6 != "2001:db8::ab" {
		t.Fatalf("after clearing access_ipv4: %+v, %v; want it empty, access_ipv6 kept", vm, err)
	}

	bad4, v4as6, mapped, zoned := "1.2.3", "203.0.113.10", "::ffff:203.0.113.10", "fe80::1%eth0"
	for _, c := range []struct {
		req  api.UpdateVMRequest
		says string
	}{
		{api.UpdateVMRequest{AccessIPv4: &bad4}, `access_ipv4 "1.2.3" is not an IPv4 address; give one like 203.0.113.10`},
		{api.UpdateVMRequest{AccessIPv6: &v4as6}, `access_ipv6 "203.0.113.10" is an IPv4 address; give it as access_ipv4, or an IPv6 address like 2001:db8::10`},
		{api.UpdateVMRequest{AccessIPv4: &v6}, `access_ipv4 "2001:DB8:0:0:0:0:0:AB" is an IPv6 address; give it as access_ipv6`},
		{api.UpdateVMRequest{AccessIPv4: &mapped}, `access_ipv4 "::ffff:203.0.113.10" is an IPv4-mapped IPv6 address; give the IPv4 address itself, like 203.0.113.10`},
		{api.UpdateVMRequest{AccessIPv6: &zoned}, `access_ipv6 "fe80::1%eth0" has a zone`},
		// One bad field refuses the whole request.
		{api.UpdateVMRequest{AccessIPv4: &v4, AccessIPv6: &bad4}, `access_ipv6 "1.2.3" is not an IPv6 address; give one like 2001:db8::10`},
	} {
		_, err := cl.UpdateVM(ctx, "web-1", c.req)
		wantAPIError(t, err, http.StatusBadRequest, c.says)
	}
	for _, c := range []struct {
		req  api.CreateVMRequest
		says string
	}{
		{api.CreateVMRequest{Name: "web-2", Image: "guest", Flavor: flavor, AccessIPv4: "10.0.0.256"}, `access_ipv4 "10.0.0.256" is not an IPv4 address; give one like 203.0.113.10`},
		{api.CreateVMRequest{Name: "web-2", Image: "guest", Flavor: flavor, AccessIPv6: "203.0.113.10"}, `access_ipv6 "203.0.113.10" is an IPv4 address`},
	} {
		_, err := cl.CreateVM(ctx, c.req)
		wantAPIError(t, err, http.StatusBadRequest, c.says)
	}
	if _, err := cl.VM(ctx, "web-2"); err == nil {
		t.Error("a refused create left vm web-2 behind")
	}
	if vm, err = cl.VM(ctx, "web-1"); err != nil || vm.AccessIPv4 != "" || vm.AccessIPv6 != "2001:db8::ab" {
		t.Fatalf("after the refusals: %+v, %v; want nothing changed", vm, err)
	}

	// On the wire: null leaves a field as is.
	if code, e := tc.raw(t, "PATCH", "/v1/vms/web-1", api.MediaJSON, `{"access_ipv4":"192.0.2.1","access_ipv6":null}`); code != http.StatusOK {
		t.Fatalf("PATCH with null: HTTP %d: %s", code, e.Message)
	}
	if vm, err = cl.VM(ctx, "web-1"); err != nil || vm.AccessIPv4 != "192.0.2.1" || vm.AccessIPv6 != "2001:db8::ab" {
		t.Fatalf("after PATCH with null: %+v, %v", vm, err)
	}
	if code, e := tc.raw(t, "PATCH", "/v1/vms/web-1", api.MediaJSON, `{"access_ipv6":"2001:db8::/64"}`); code != http.StatusBadRequest ||
		!strings.Contains(e.Message, `access_ipv6 "2001:db8::/64" is not an IPv6 address`) {
		t.Errorf("PATCH with a prefix: HTTP %d %q; want 400 saying it is no address", code, e.Message)
	}
}

package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// vmUpdateRoutes answers PATCH /v1/vms/{name} from testVMs: the VM with
// the fields the request gives applied (access addresses in canonical
// form), or 400 with the controller's message for an invalid request.
func vmUpdateRoutes(record func(string, http.HandlerFunc)) {
	record("PATCH /v1/vms/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, v := range testVMs() {
			if v.Name != r.PathValue("name") {
				continue
			}
			var req api.UpdateVMRequest
			json.NewDecoder(r.Body).Decode(&req)
			if err := req.Validate(); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(api.Error{Code: api.CodeInvalid, Message: err.Error()})
				return
			}
			req.Apply(&v)
			json.NewEncoder(w).Encode(v)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(api.Error{Code: api.CodeNotFound, Message: `vm "` + r.PathValue("name") + `" not found; list VMs with: godwit vm list`})
	})
}

// vm create takes a display name and a description; vm set sends only
// the flags given ("" clears a field), prints the VM as vm show does
// (-o json too), and refuses to send nothing.
func TestVMDisplayNameCommands(t *testing.T) {
	srv := newFakeController(t)
	out := mustRun(t, srv.Server, "vm", "create", "web-9", "--image", "testguest",
		"--display-name", "Web shop – Zürich 🚀", "--description", "front end, rack 2")
	var req api.CreateVMRequest
	json.Unmarshal(srv.body("POST /v1/vms"), &req)
	if req.DisplayName != "Web shop – Zürich 🚀" || req.Description != "front end, rack 2" {
		t.Errorf("vm create sent display_name %q, description %q", req.DisplayName, req.Description)
	}
	for _, want := range []string{"Display name:  Web shop – Zürich 🚀\n", "Description:   front end, rack 2\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("vm create printed no %q:\n%s", want, out)
		}
	}

	out = mustRun(t, srv.Server, "vm", "set", "web-1", "--display-name", "Nouveau nom ✓")
	if got := string(srv.body("PATCH /v1/vms/{name}")); got != `{"display_name":"Nouveau nom ✓"}` {
		t.Errorf("vm set --display-name sent %s", got)
	}
	if !strings.Contains(out, "Name:          web-1\nDisplay name:  Nouveau nom ✓\n") || strings.Contains(out, "Description:") {
		t.Errorf("vm set printed:\n%s", out)
	}
	// "" is a value: the field cleared, not left alone.
	mustRun(t, srv.Server, "vm", "set", "web-1", "--description", "")
	if got := string(srv.body("PATCH /v1/vms/{name}")); got != `{"description":""}` {
		t.Errorf("vm set --description \"\" sent %s", got)
	}
	var v api.VM
	out = mustRun(t, srv.Server, "vm", "set", "web-1", "--display-name", "a b", "--description", "c", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Name != "web-1" || v.DisplayName != "a b" || v.Description != "c" {
		t.Errorf("vm set -o json = %q (%v)", out, err)
	}

	if _, errOut, code := run(t, srv.Server, "vm", "set", "web-1"); code != 2 || !strings.Contains(errOut, "nothing to change: give --display-name, --description, --access-ipv4 or --access-ipv6") {
		t.Errorf("vm set without flags: exit %d, %q; want 2 and what to do", code, errOut)
	}
	if _, errOut, code := run(t, srv.Server, "vm", "set", "nope", "--display-name", "x"); code != 1 || !strings.Contains(errOut, "godwit vm list") {
		t.Errorf("vm set of an unknown VM: exit %d, %q", code, errOut)
	}
}

// vm create and vm set take the access addresses; vm show prints them
// when set (canonical, as the controller keeps them), "" clears one, and
// the controller's refusal of a bad one reaches the user.
func TestVMAccessIPCommands(t *testing.T) {
	srv := newFakeController(t)
	out := mustRun(t, srv.Server, "vm", "create", "web-9", "--image", "testguest",
		"--access-ipv4", "203.0.113.10", "--access-ipv6", "2001:DB8:0::10")
	var req api.CreateVMRequest
	json.Unmarshal(srv.body("POST /v1/vms"), &req)
	if req.AccessIPv4 != "203.0.113.10" || req.AccessIPv6 != "2001:DB8:0::10" {
		t.Errorf("vm create sent access_ipv4 %q, access_ipv6 %q", req.AccessIPv4, req.AccessIPv6)
	}
	for _, want := range []string{"Access IPv4:   203.0.113.10\n", "Access IPv6:   2001:db8::10\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("vm create printed no %q:\n%s", want, out)
		}
	}
	// Not set: not shown.
	if out := mustRun(t, srv.Server, "vm", "show", "web-1"); strings.Contains(out, "Access IP") {
		t.Errorf("vm show of a VM without access addresses printed them:\n%s", out)
	}

	out = mustRun(t, srv.Server, "vm", "set", "web-1", "--access-ipv6", "2001:db8::1")
	if got := string(srv.body("PATCH /v1/vms/{name}")); got != `{"access_ipv6":"2001:db8::1"}` {
		t.Errorf("vm set --access-ipv6 sent %s", got)
	}
	if !strings.Contains(out, "Access IPv6:   2001:db8::1\n") || strings.Contains(out, "Access IPv4:") {
		t.Errorf("vm set printed:\n%s", out)
	}
	mustRun(t, srv.Server, "vm", "set", "web-1", "--access-ipv4", "")
	if got := string(srv.body("PATCH /v1/vms/{name}")); got != `{"access_ipv4":""}` {
		t.Errorf("vm set --access-ipv4 \"\" sent %s", got)
	}
	var v api.VM
	out = mustRun(t, srv.Server, "vm", "set", "web-1", "--access-ipv4", "198.51.100.7", "--access-ipv6", "::1", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.AccessIPv4 != "198.51.100.7" || v.AccessIPv6 != "::1" {
		t.Errorf("vm set -o json = %q (%v)", out, err)
	}

	if _, errOut, code := run(t, srv.Server, "vm", "set", "web-1", "--access-ipv4", "1.2.3"); code != 1 ||
		!strings.Contains(errOut, `access_ipv4 "1.2.3" is not an IPv4 address; give one like 203.0.113.10`) {
		t.Errorf("vm set with a bad address: exit %d, %q; want 1 and the controller's message", code, errOut)
	}
}

package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// vmUpdateRoutes answers PATCH /v1/vms/{name} from testVMs: the VM with
// the fields the request gives applied.
func vmUpdateRoutes(record func(string, http.HandlerFunc)) {
	record("PATCH /v1/vms/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, v := range testVMs() {
			if v.Name != r.PathValue("name") {
				continue
			}
			var req api.UpdateVMRequest
			json.NewDecoder(r.Body).Decode(&req)
			if req.DisplayName != nil {
				v.DisplayName = *req.DisplayName
			}
			if req.Description != nil {
				v.Description = *req.Description
			}
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

	if _, errOut, code := run(t, srv.Server, "vm", "set", "web-1"); code != 2 || !strings.Contains(errOut, "nothing to change: give --display-name or --description") {
		t.Errorf("vm set without flags: exit %d, %q; want 2 and what to do", code, errOut)
	}
	if _, errOut, code := run(t, srv.Server, "vm", "set", "nope", "--display-name", "x"); code != 1 || !strings.Contains(errOut, "godwit vm list") {
		t.Errorf("vm set of an unknown VM: exit %d, %q", code, errOut)
	}
}

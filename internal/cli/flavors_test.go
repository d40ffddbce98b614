package cli

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

func testFlavors() []api.NamedFlavor {
	return []api.NamedFlavor{
		{ID: "4", Name: "large", Flavor: api.Flavor{VCPUs: 4, MemoryMiB: 8192, DiskMiB: 81920}, Description: "general purpose", CreatedAt: created},
		{ID: "0c7b6a1e-0000-4000-8000-00000000000f", Name: "tiny", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}, CreatedAt: now.Add(-50 * time.Hour)},
	}
}

// flavorRoutes answers the flavor endpoints from testFlavors, by name or
// ID; a create echoes its request as the flavor, with ID "new" unless
// it gives one.
func flavorRoutes(record func(string, http.HandlerFunc)) {
	find := func(w http.ResponseWriter, key string) (api.NamedFlavor, bool) {
		for _, f := range testFlavors() {
			if f.Name == key || f.ID == key {
				return f, true
			}
		}
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(api.Error{Code: api.CodeNotFound, Message: `flavor "` + key + `" not found; list flavors with: godwit flavor list`})
		return api.NamedFlavor{}, false
	}
	record("GET /v1/flavors", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(testFlavors()) })
	record("GET /v1/flavors/{name}", func(w http.ResponseWriter, r *http.Request) {
		if f, ok := find(w, r.PathValue("name")); ok {
			json.NewEncoder(w).Encode(f)
		}
	})
	record("POST /v1/flavors", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateFlavorRequest
		json.NewDecoder(r.Body).Decode(&req)
		f := api.NamedFlavor{ID: req.ID, Name: req.Name, Flavor: req.Sizes(), Description: req.Description, CreatedAt: created}
		if f.ID == "" {
			f.ID = "new"
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(f)
	})
	record("DELETE /v1/flavors/{name}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := find(w, r.PathValue("name")); ok {
			w.WriteHeader(http.StatusNoContent)
		}
	})
}

func TestFlavorCommands(t *testing.T) {
	srv := newFakeController(t)
	var a app
	a.out = new(strings.Builder)
	if err := writeFlavors(&a, testFlavors(), now); err != nil {
		t.Fatal(err)
	}
	golden(t, "flavor-list", a.out.(*strings.Builder).String())
	if out := mustRun(t, srv.Server, "flavor", "list"); !strings.HasPrefix(out, "NAME   ID") || !strings.Contains(out, "tiny") {
		t.Errorf("flavor list:\n%s", out)
	}
	var fs []api.NamedFlavor
	if err := json.Unmarshal([]byte(mustRun(t, srv.Server, "flavor", "list", "-o", "json")), &fs); err != nil || !reflect.DeepEqual(fs, testFlavors()) {
		t.Errorf("flavor list -o json: %+v, %v", fs, err)
	}
	golden(t, "flavor-show", mustRun(t, srv.Server, "flavor", "show", "4"))
	if out := mustRun(t, srv.Server, "flavor", "show", "tiny", "-o", "yaml"); !strings.Contains(out, "memory_mib: 64\n") || !strings.Contains(out, "name: tiny\n") {
		t.Errorf("flavor show -o yaml:\n%s", out)
	}
	if _, errOut, code := run(t, srv.Server, "flavor", "show", "medium"); code != 1 || !strings.Contains(errOut, "godwit flavor list") {
		t.Errorf("flavor show of an unknown flavor: exit %d, %q", code, errOut)
	}

	out := mustRun(t, srv.Server, "flavor", "create", "small", "--vcpus", "1", "--memory", "512M", "--disk", "10G", "--id", "2", "--description", "one vCPU")
	if !strings.Contains(out, "ID:          2\n") || !strings.Contains(out, "Disk:        10G\n") {
		t.Errorf("flavor create printed:\n%s", out)
	}
	var req api.CreateFlavorRequest
	json.Unmarshal(srv.body("POST /v1/flavors"), &req)
	if want := (api.CreateFlavorRequest{Name: "small", ID: "2", VCPUs: 1, MemoryMiB: 512, DiskMiB: 10240, Description: "one vCPU"}); req != want {
		t.Errorf("flavor create sent %+v; want %+v", req, want)
	}
	mustRun(t, srv.Server, "flavor", "create", "nodisk", "--vcpus", "1", "--memory", "64", "--disk", "0")
	if got := string(srv.body("POST /v1/flavors")); got != `{"name":"nodisk","vcpus":1,"memory_mib":64,"disk_mib":0}` {
		t.Errorf("flavor create without --id sent %s", got)
	}
	if _, errOut, code := run(t, srv.Server, "flavor", "create", "x", "--vcpus", "1"); code != 2 || !strings.Contains(errOut, "--memory, --disk") {
		t.Errorf("flavor create without sizes: exit %d, %q; want 2 naming the missing flags", code, errOut)
	}
	if out := mustRun(t, srv.Server, "flavor", "delete", "large"); out != "flavor large deleted\n" {
		t.Errorf("flavor delete printed %q", out)
	}

	// vm create --flavor sends the name and no sizes; resize likewise.
	mustRun(t, srv.Server, "vm", "create", "web-3", "--image", "testguest", "--flavor", "large")
	var vreq api.CreateVMRequest
	json.Unmarshal(srv.body("POST /v1/vms"), &vreq)
	if vreq.FlavorName != "large" || vreq.Flavor != (api.Flavor{}) || strings.Contains(string(srv.body("POST /v1/vms")), `"flavor":`) {
		t.Errorf("vm create --flavor sent %s", srv.body("POST /v1/vms"))
	}
	for _, args := range [][]string{
		{"vm", "create", "web-4", "--image", "testguest", "--flavor", "large", "--memory", "1G"},
		{"resize", "web-1", "--flavor", "large", "--vcpus", "2"},
	} {
		if _, errOut, code := run(t, srv.Server, args...); code != 2 || !strings.Contains(errOut, "not both") {
			t.Errorf("godwit %s: exit %d, %q; want 2 saying not both", strings.Join(args, " "), code, errOut)
		}
	}
	mustRun(t, srv.Server, "resize", "web-1", "--flavor", "large", "--dry-run")
	if got := string(srv.body("POST /v1/vms/{name}/resize")); got != `{"flavor_name":"large","dry_run":true}` {
		t.Errorf("resize --flavor sent %s", got)
	}

	v := testVMs()[0]
	v.FlavorName = "large"
	var b strings.Builder
	a.out = &b
	if err := a.printVM(v); err != nil || !strings.Contains(b.String(), "Flavor:        large\nvCPUs:") {
		t.Errorf("vm show of a VM made from a flavor:\n%s", b.String())
	}
}

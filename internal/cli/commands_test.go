package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// fakeController answers the endpoints the user commands use, from
// testVMs and testHosts, and records the last request body per route.
type fakeController struct {
	*httptest.Server
	mux  *http.ServeMux // more routes may be added (events_test.go)
	mu   sync.Mutex
	last map[string][]byte
}

func newFakeController(t *testing.T) *fakeController {
	t.Helper()
	f := &fakeController{last: map[string][]byte{}}
	vms := map[string]api.VM{}
	for _, v := range testVMs() {
		vms[v.Name] = v
	}
	notFound := func(w http.ResponseWriter, what, name string) {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(api.Error{Code: api.CodeNotFound,
			Message: what + ` "` + name + `" not found; list them with: godwit ` + what + ` list`})
	}
	mux := http.NewServeMux()
	record := func(route string, h http.HandlerFunc) {
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			f.last[route] = b
			f.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
			h(w, r)
		})
	}
	record("GET /v1/hosts", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(testHosts()) })
	record("GET /v1/hosts/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, h := range testHosts() {
			if h.Name == r.PathValue("name") {
				json.NewEncoder(w).Encode(h)
				return
			}
		}
		notFound(w, "host", r.PathValue("name"))
	})
	record("GET /v1/vms", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(testVMs()) })
	record("GET /v1/vms/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := vms[r.PathValue("name")]
		if !ok {
			notFound(w, "vm", r.PathValue("name"))
			return
		}
		json.NewEncoder(w).Encode(v)
	})
	record("POST /v1/vms", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateVMRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		v := testVMs()[0]
		v.Name, v.Flavor, v.Pool, v.Image, v.Host, v.Cmdline = req.Name, req.Flavor, req.Pool, req.Image, req.Host, req.Cmdline
		v.DisplayName, v.Description = req.DisplayName, req.Description
		v.AccessIPv4, v.AccessIPv6 = api.CanonicalAccessIP(req.AccessIPv4), api.CanonicalAccessIP(req.AccessIPv6)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(v)
	})
	record("POST /v1/vms/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := vms[r.PathValue("name")]
		if !ok {
			notFound(w, "vm", r.PathValue("name"))
			return
		}
		v.State = map[string]string{"start": "running", "stop": "stopped", "reboot": "running"}[r.PathValue("action")]
		json.NewEncoder(w).Encode(v)
	})
	record("DELETE /v1/vms/{name}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	record("GET /v1/vms/{name}/console", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "godwit-guest hb=1\ngodwit-guest hb=2\n")
	})
	record("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.Version{Version: "9.9.9", Store: "sqlite"})
	})
	vmUpdateRoutes(record)
	intentRoutes(record)
	flavorRoutes(record)
	keyPairRoutes(record)
	settingsRoutes(record)
	f.mux, f.Server = mux, httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeController) body(route string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last[route]
}

// run runs godwit with args against srv and returns stdout, stderr and
// the exit status.
func run(t *testing.T, srv *httptest.Server, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runWith(context.Background(), srv, false, args...)
}

// runWith runs godwit as run does, with a context, as if stdout were a
// terminal when tty is set; watches poll every millisecond.
func runWith(ctx context.Context, srv *httptest.Server, tty bool, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	a := newApp(&out, &errOut)
	a.tty, a.poll = tty, time.Millisecond
	code = a.execute(ctx, append([]string{"--server", srv.URL}, args...))
	return out.String(), errOut.String(), code
}

func mustRun(t *testing.T, srv *httptest.Server, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, srv, args...)
	if code != 0 {
		t.Fatalf("godwit %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestVMCommands(t *testing.T) {
	srv := newFakeController(t)
	golden(t, "vm-show", mustRun(t, srv.Server, "vm", "show", "web-1"))
	if out := mustRun(t, srv.Server, "vm", "list"); !strings.HasPrefix(out, "NAME  ") || !strings.Contains(out, "web-1") || !strings.Contains(out, "db-1") {
		t.Errorf("vm list:\n%s", out)
	}

	var vms []api.VM
	out := mustRun(t, srv.Server, "vm", "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &vms); err != nil || len(vms) != 2 || vms[0].PID != 4242 {
		t.Errorf("vm list -o json = %q (%v)", out, err)
	}
	if !strings.Contains(out, "\n  {") {
		t.Errorf("-o json is not indented:\n%s", out)
	}

	var created api.VM
	out = mustRun(t, srv.Server, "vm", "create", "db-2", "--image", "testguest", "--vcpus", "2", "--memory", "1.5G",
		"--disk", "0", "--pool", "shared", "--host", "host3", "--cmdline", "dirty_mb=8", "--no-start", "--on-panic", "pause", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Name != "db-2" {
		t.Fatalf("vm create -o json = %q (%v)", out, err)
	}
	var req api.CreateVMRequest
	json.Unmarshal(srv.body("POST /v1/vms"), &req)
	want := api.CreateVMRequest{Name: "db-2", Project: "default", Image: "testguest", Flavor: api.Flavor{VCPUs: 2, MemoryMiB: 1536},
		Pool: "shared", Host: "host3", Cmdline: "dirty_mb=8", OnPanic: api.OnPanicPause}
	if req.Start == nil || *req.Start {
		t.Errorf("--no-start sent start=%v", req.Start)
	}
	req.Start = nil
	if !reflect.DeepEqual(req, want) {
		t.Errorf("vm create sent\n %+v\nwant\n %+v", req, want)
	}
	mustRun(t, srv.Server, "vm", "create", "web-2", "--image", "testguest")
	json.Unmarshal(srv.body("POST /v1/vms"), &req)
	if req.Start != nil || req.Flavor != (api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 1024}) || req.Pool != "local" || req.OnPanic != api.OnPanicRestart {
		t.Errorf("vm create defaults sent %+v", req)
	}

	if out := mustRun(t, srv.Server, "vm", "stop", "web-1", "--force", "--timeout", "1500ms"); !strings.Contains(out, "stopped") {
		t.Errorf("vm stop printed:\n%s", out)
	}
	var action api.VMActionRequest
	json.Unmarshal(srv.body("POST /v1/vms/{name}/{action}"), &action)
	if action != (api.VMActionRequest{Force: true, TimeoutSeconds: 2}) {
		t.Errorf("vm stop sent %+v", action)
	}
	for _, a := range []string{"start", "reboot"} {
		if out := mustRun(t, srv.Server, "vm", a, "web-1"); !strings.Contains(out, "running") {
			t.Errorf("vm %s printed:\n%s", a, out)
		}
	}
	if out := mustRun(t, srv.Server, "vm", "delete", "web-1"); out != "vm web-1 deleted\n" {
		t.Errorf("vm delete printed %q", out)
	}
	if out := mustRun(t, srv.Server, "vm", "console", "web-1"); out != "godwit-guest hb=1\ngodwit-guest hb=2\n" {
		t.Errorf("vm console printed %q", out)
	}
}

func TestHostAndVersionCommands(t *testing.T) {
	srv := newFakeController(t)
	out := mustRun(t, srv.Server, "host", "list")
	if !strings.HasPrefix(out, "NAME   STATE  ENABLED  ACCEL  QEMU    CPUS") || strings.Count(out, "\n") != 4 {
		t.Errorf("host list:\n%s", out)
	}
	if out := mustRun(t, srv.Server, "host", "show", "host1"); !strings.Contains(out, "Accelerator reason:") || !strings.Contains(out, "QEMU version:       7.2.22") || !strings.Contains(out, "Pool shared:") {
		t.Errorf("host show:\n%s", out)
	}
	var h api.Host
	if err := json.Unmarshal([]byte(mustRun(t, srv.Server, "host", "show", "host1", "-o", "json")), &h); err != nil || h.CPUModel != "AMD EPYC 7B13" {
		t.Errorf("host show -o json: %+v, %v", h, err)
	}
	if out := mustRun(t, srv.Server, "version"); !strings.Contains(out, "controller 9.9.9 at "+srv.URL+" (sqlite store)") {
		t.Errorf("version:\n%s", out)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(mustRun(t, srv.Server, "version", "-o", "json")), &v); err != nil || v.Controller == nil || v.Controller.Version != "9.9.9" {
		t.Errorf("version -o json: %+v, %v", v, err)
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseMiB(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"256", 256, true}, {"256M", 256, true}, {"256MiB", 256, true}, {"256mb", 256, true},
		{"1G", 1024, true}, {"1.5G", 1536, true}, {"2GiB", 2048, true}, {"1T", 1 << 20, true}, {"0", 0, true},
		{"", 0, false}, {"-1G", 0, false}, {"1.3M", 0, false}, {"12X", 0, false}, {"G", 0, false}, {"1e3", 0, false},
	} {
		got, err := parseMiB(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseMiB(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "256M") && !strings.Contains(err.Error(), "whole number") {
			t.Errorf("parseMiB(%q) error %q does not say what is accepted", tt.in, err)
		}
	}
}

// fakeController answers the few endpoints the commands under test use.
func fakeController(t *testing.T) *httptest.Server {
	t.Helper()
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	vm := api.VM{ID: "0c7b6a1e-0000-4000-8000-000000000001", Name: "web-1", Project: "default", Host: "host2", Image: "testguest",
		Flavor: api.Flavor{VCPUs: 2, MemoryMiB: 1536, DiskMiB: 10240}, Pool: "local", DesiredState: "running", State: "running",
		PID: 4242, CreatedAt: created, UpdatedAt: created}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/vms", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode([]api.VM{vm}) })
	mux.HandleFunc("GET /v1/vms/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "web-1" {
			w.WriteHeader(404)
			json.NewEncoder(w).Encode(api.Error{Code: api.CodeNotFound, Message: `vm "` + r.PathValue("name") + `" not found; list VMs with: godwit vm list`})
			return
		}
		json.NewEncoder(w).Encode(vm)
	})
	mux.HandleFunc("POST /v1/vms", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateVMRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		v := vm
		v.Name, v.Flavor, v.Pool, v.Image = req.Name, req.Flavor, req.Pool, req.Image
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(v)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func run(t *testing.T, srv *httptest.Server, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs(append([]string{"--server", srv.URL}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s output changed (go test -update if intended):\n%s", name, got)
	}
}

func TestVMCommands(t *testing.T) {
	srv := fakeController(t)
	out, err := run(t, srv, "vm", "show", "web-1")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "vm-show", out)

	out, err = run(t, srv, "vm", "list", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var vms []api.VM
	if err := json.Unmarshal([]byte(out), &vms); err != nil || len(vms) != 1 || vms[0].PID != 4242 {
		t.Errorf("vm list -o json = %q (%v)", out, err)
	}

	out, err = run(t, srv, "vm", "create", "db-1", "--image", "testguest", "--memory", "1.5G", "--disk", "2G", "--pool", "shared", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var created api.VM
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Flavor.MemoryMiB != 1536 || created.Flavor.DiskMiB != 2048 || created.Pool != "shared" {
		t.Errorf("vm create sent %+v", created)
	}

	if _, err := run(t, srv, "vm", "show", "nope"); err == nil || !strings.Contains(err.Error(), "godwit vm list") {
		t.Errorf("show of an unknown vm: %v; want the server's message", err)
	}
	if _, err := run(t, srv, "vm", "create", "x", "--image", "i", "--memory", "lots"); err == nil || !strings.Contains(err.Error(), "--memory") {
		t.Errorf("bad --memory: %v", err)
	}
	if _, err := run(t, srv, "vm", "list", "-o", "yaml"); err == nil {
		t.Error("-o yaml was accepted")
	}
}

func TestHostTable(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)
	var out bytes.Buffer
	a := &app{out: &out}
	err := writeHosts(a, []api.Host{
		{Name: "host1", State: "up", Enabled: true, Accelerator: "tcg", CPUs: 2, AllocatedCPUs: 3, MemoryMiB: 24064, AllocatedMemoryMiB: 512, VMs: 2, LastHeartbeat: now.Add(-time.Second)},
		{Name: "host2", State: "down", Enabled: false, Accelerator: "kvm", CPUs: 64, MemoryMiB: 262144, LastHeartbeat: now.Add(-3 * time.Minute)},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "host-list", out.String())
}

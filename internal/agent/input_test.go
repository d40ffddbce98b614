package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
)

// agentCall sends a request to the agent at base and returns the status
// and the error body, if any.
func agentCall(t *testing.T, method, u, body string) (int, api.Error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.Error
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e
}

// Every agent route with a VM id refuses one that is not a UUID with 400
// before its handler runs: traversal ("../x", escaped as the path needs
// it), a slash smuggled in as %2F, dots, or a UUID in the wrong case.
func TestRoutesRefuseBadIDs(t *testing.T) {
	d, _ := fakeWithVM(t)
	a, base := resizeAgentWith(t, d)
	outside := filepath.Join(t.TempDir(), "x")
	bad := []string{
		url.PathEscape("../x"),
		url.PathEscape("../../../../" + outside),
		"..%2Fx",
		"..%2F..%2Fetc%2Fpasswd",
		"a%2Fb",
		"%2E%2E",
		"..",
		"x",
		strings.ToUpper(resizeID),
		resizeID + "0",
		resizeID[:35],
	}
	routes := a.routes().Patterns()
	tried := 0
	for _, p := range routes {
		method, path, _ := strings.Cut(p, " ")
		if !strings.Contains(path, "{id}") {
			continue
		}
		for _, id := range bad {
			u := base + strings.NewReplacer("{id}", id, "{action}", "start").Replace(path)
			status, e := agentCall(t, method, u, "{}")
			tried++
			if id == ".." || id == "%2E%2E" {
				// The mux cleans a dot-dot segment away (a redirect
				// elsewhere) before any route: never a handler, never 2xx.
				if status/100 == 2 {
					t.Errorf("%s %s = %d; want a refusal", method, u, status)
				}
				continue
			}
			if status != http.StatusBadRequest || !strings.Contains(e.Message, "not a vm id") {
				t.Errorf("%s %s = %d %q; want 400 saying it is not a vm id", method, u, status, e.Message)
			}
		}
	}
	if tried < 15*len(bad) {
		t.Errorf("tried %d requests over %d routes; the agent's routes were not found", tried, len(routes))
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Errorf("a request created %s outside the agent's directories", outside)
	}
	// The VM is untouched and a good id still works.
	if status, e := agentCall(t, http.MethodGet, base+"/v1/vms/"+resizeID, ""); status != http.StatusOK {
		t.Errorf("GET of the vm = %d %q", status, e.Message)
	}
}

// Bodies are checked where they enter too: an id, an image hash that
// would name a path, or a size out of bounds is 400, and the agent goes
// on serving.
func TestBodiesRefused(t *testing.T) {
	d, _ := fakeWithVM(t)
	c, base := resizeAgent(t, d)
	ctx := context.Background()
	const id = "6c1d1b1e-9a0f-4e7a-8c55-3f1f0e6b2d11"
	sum := strings.Repeat("ab", 32)
	good := hostapi.CreateVM{ID: id, Name: "v", VCPUs: 1, MemoryMiB: 128, DiskMiB: 64, Pool: api.PoolLocal,
		Image: api.Image{Name: "guest", Files: []api.ImageFile{{Role: api.RoleDisk, Size: 1, SHA256: sum}}}}
	vm := func(f func(*hostapi.CreateVM)) hostapi.CreateVM {
		v := good
		v.Image.Files = []api.ImageFile{good.Image.Files[0]}
		f(&v)
		return v
	}
	for _, tt := range []struct {
		name string
		vm   hostapi.CreateVM
		msg  string
	}{
		{"traversal id", vm(func(v *hostapi.CreateVM) { v.ID = "../x" }), "vm id"},
		{"hash as a path", vm(func(v *hostapi.CreateVM) { v.Image.Files[0].SHA256 = "../../../../etc/passwd" }), "sha256"},
		{"hash in capitals", vm(func(v *hostapi.CreateVM) { v.Image.Files[0].SHA256 = strings.ToUpper(sum) }), "sha256"},
		{"short hash", vm(func(v *hostapi.CreateVM) { v.Image.Files[0].SHA256 = sum[:63] }), "sha256"},
		{"unknown role", vm(func(v *hostapi.CreateVM) { v.Image.Files[0].Role = "../kernel" }), "role"},
		{"negative disk", vm(func(v *hostapi.CreateVM) { v.DiskMiB = -1 }), "disk_mib"},
		{"absurd disk", vm(func(v *hostapi.CreateVM) { v.DiskMiB = 1 << 40 }), "disk_mib"},
		{"no vcpus", vm(func(v *hostapi.CreateVM) { v.VCPUs = 0 }), "vcpus"},
		{"negative memory", vm(func(v *hostapi.CreateVM) { v.MemoryMiB = -128 }), "memory_mib"},
		{"negative ceiling", vm(func(v *hostapi.CreateVM) { v.MaxMemoryMiB = -1 }), "max_memory_mib"},
		{"negative file size", vm(func(v *hostapi.CreateVM) { v.Image.Files[0].Size = -1 }), "size"},
		{"bad mac", vm(func(v *hostapi.CreateVM) { v.NICs = []hostapi.NIC{{MAC: "x", Address: "10.0.0.2/24"}} }), "mac"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateVM(ctx, tt.vm)
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("create: %v; want 400 about %s", err, tt.msg)
			}
			in := tt.vm
			_, err = c.PrepareIncoming(ctx, in)
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("incoming: %v; want 400", err)
			}
			if in.ID == id { // the path must match the body's id
				err = c.ImportDisk(ctx, hostapi.ImportDisk{VM: in, Source: "http://127.0.0.1:1"})
				if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("import: %v; want 400 about %s", err, tt.msg)
				}
			}
		})
	}
	for _, tt := range []struct{ path, body, msg string }{
		{"/resize", `{"disk_mib":-1}`, "disk_mib"},
		{"/resize", `{"memory_mib":-64}`, "memory_mib"},
		{"/resize", `{"vcpus":100000}`, "vcpus"},
		{"/stop", `{"timeout_seconds":-5}`, "timeout_seconds"},
		{"/migrate", `{"uri":"tcp:127.0.0.1:1","max_downtime_ms":-1}`, "max_downtime_ms"},
		{"/migrate", `{"uri":"tcp:127.0.0.1:1","bandwidth_mb_per_s":-1}`, "bandwidth_mb_per_s"},
		{"/migrate", `{"uri":"tcp:127.0.0.1:1","completion_timeout_per_gib_s":-1}`, "completion_timeout"},
		{"/migrate", `{"uri":"tcp:127.0.0.1:1","timeout_action":"explode"}`, "timeout_action"},
		{"/import", `{"vm":{"id":"` + resizeID + `","vcpus":1,"memory_mib":128,"disk_mib":64},"source":"file:///etc/passwd"}`, "source agent"},
		{"/import", `{"vm":{"id":"` + resizeID + `","vcpus":1,"memory_mib":128,"disk_mib":64},"source":"http://127.0.0.1:1/v1/vms/x","source_host":"h2","token":"` + hostapi.NewTransferToken() + `"}`, "source agent"},
		{"/import", `{"vm":{"id":"` + resizeID + `","vcpus":1,"memory_mib":128,"disk_mib":64},"source":"http://127.0.0.1:1","token":"` + hostapi.NewTransferToken() + `"}`, "host name"},
		{"/import", `{"vm":{"id":"` + resizeID + `","vcpus":1,"memory_mib":128,"disk_mib":64},"source":"http://127.0.0.1:1","source_host":"h2"}`, "transfer token"},
	} {
		if status, e := agentCall(t, http.MethodPost, base+"/v1/vms/"+resizeID+tt.path, tt.body); status != http.StatusBadRequest || !strings.Contains(e.Message, tt.msg) {
			t.Errorf("POST %s %s = %d %q; want 400 about %s", tt.path, tt.body, status, e.Message, tt.msg)
		}
	}
	if _, err := c.VM(ctx, resizeID); err != nil {
		t.Errorf("the agent no longer answers after the bad requests: %v", err)
	}
}

// An import with a negative disk size is answered 400, and the agent
// lives on (it used to crash, stopping its lease and heartbeats).
func TestImportNegativeSize(t *testing.T) {
	d, _ := fakeWithVM(t)
	c, base := resizeAgent(t, d)
	body := `{"vm":{"id":"` + resizeID + `","name":"r","vcpus":1,"memory_mib":128,"disk_mib":-1024,"pool":"local"},"source":"http://127.0.0.1:1"}`
	status, e := agentCall(t, http.MethodPost, base+"/v1/vms/"+resizeID+"/import", body)
	if status != http.StatusBadRequest || !strings.Contains(e.Message, "disk_mib") {
		t.Errorf("import of a negative disk = %d %q; want 400 about disk_mib", status, e.Message)
	}
	if _, err := c.VM(context.Background(), resizeID); err != nil {
		t.Errorf("the agent no longer answers: %v", err)
	}
}

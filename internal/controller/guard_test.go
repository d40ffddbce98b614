package controller_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// The controller and its agents refuse what a web page can send them: a
// text/plain or form POST (CSRF), a cross-site request, a Host header
// that names neither an address nor this machine (DNS rebinding). The
// Go client's writes, body or not, and image uploads still pass.
func TestBrowserRequestsRefused(t *testing.T) {
	tc := newTestCluster(t, 1, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest") // a multipart upload: exempt from the JSON rule
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "keep", Image: "guest", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}}); err != nil {
		t.Fatal(err)
	}
	agentURL := tc.agents[0].cfg.Advertise
	vm, _ := tc.client.VM(ctx, "keep")
	send := func(method, u, ctype, body string, header map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range header {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		name, method, url, ctype, body string
		header                         map[string]string
		status                         int
	}{
		{"text/plain stop", "POST", tc.url + "/v1/vms/keep/stop", "text/plain", `{"force":true}`, nil, 415},
		{"form create", "POST", tc.url + "/v1/vms", "application/x-www-form-urlencoded", `name=x&image=guest`, nil, 415},
		{"text/plain delete", "DELETE", tc.url + "/v1/vms/keep", "text/plain", `x`, nil, 415},
		{"cross-site stop", "POST", tc.url + "/v1/vms/keep/stop", "", ``, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"cross-site delete", "DELETE", tc.url + "/v1/vms/keep", "application/json", ``, map[string]string{"Origin": "http://evil.example"}, 403},
		{"rebound read", "GET", tc.url + "/v1/vms", "", ``, map[string]string{"Host": "evil.example"}, 421},
		{"rebound write", "POST", tc.url + "/v1/vms/keep/stop", "application/json", `{}`, map[string]string{"Host": "evil.example:7400"}, 421},
		{"agent text/plain stop", "POST", agentURL + "/v1/vms/" + vm.ID + "/stop", "text/plain", `{"force":true}`, nil, 415},
		{"agent cross-site delete", "DELETE", agentURL + "/v1/vms/" + vm.ID, "", ``, map[string]string{"Origin": "http://evil.example"}, 403},
		{"agent rebound read", "GET", agentURL + "/v1/vms/" + vm.ID + "/console", "", ``, map[string]string{"Host": "evil.example"}, 421},
	} {
		if status, body := send(tt.method, tt.url, tt.ctype, tt.body, tt.header); status != tt.status {
			t.Errorf("%s: %s %s = %d %s; want %d", tt.name, tt.method, tt.url, status, body, tt.status)
		}
	}
	if got, _ := tc.client.VM(ctx, "keep"); got.State != api.VMRunning {
		t.Errorf("after the refused requests keep is %s; want running", got.State)
	}
	// The client's own writes pass: with a body, without one (a delete).
	if _, err := tc.client.VMAction(ctx, "keep", "stop", api.VMActionRequest{Force: true}); err != nil {
		t.Errorf("client stop: %v", err)
	}
	if err := tc.client.DeleteVM(ctx, "keep"); err != nil {
		t.Errorf("client delete: %v", err)
	}
}

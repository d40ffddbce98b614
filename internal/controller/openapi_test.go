package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/controller"
	"github.com/godwit/godwit/internal/httpx/httpxtest"
	"github.com/godwit/godwit/internal/openapi"
)

// The route table the document is made from (api.Routes) is the
// controller's: the routes of its policy table, every one registered, no
// more and no fewer.
func TestOpenAPIRoutesAreThePolicy(t *testing.T) {
	policy := controller.PolicyRoutes()
	var table []string
	for _, r := range api.Routes {
		table = append(table, r.Pattern())
		if !slices.Contains(policy, r.Pattern()) {
			t.Errorf("api.Routes has %s, which the controller does not serve (it is not in the policy table)", r.Pattern())
		}
	}
	for _, p := range policy {
		if !slices.Contains(table, p) && !controller.PolicyNotREST(p) {
			t.Errorf("the controller serves %s, which api.Routes (and so the OpenAPI document) lacks: add it to api/routes.go", p)
		}
	}
	// The internal routes are the agents': their access says so.
	for _, r := range api.Routes {
		if r.Internal != (r.Pattern() == "POST /v1/join" || controller.PolicyAccess(r.Pattern()) == "host") {
			t.Errorf("%s: internal %v, access %s: only the agents' routes (host access, and join) are internal", r.Pattern(), r.Internal, controller.PolicyAccess(r.Pattern()))
		}
	}
}

// docs/openapi.json is what the code generates now, and the document is
// well formed.
func TestOpenAPICommitted(t *testing.T) {
	doc, err := controller.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, committed) {
		t.Errorf("docs/openapi.json is not what the code generates (a route, a type or a rule changed): regenerate it with make openapi (go generate ./internal/controller/) and commit it; first difference at line %d",
			firstDiffLine(doc, committed))
	}
	d, err := openapi.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range openapi.Check(d) {
		t.Error(e)
	}
}

// decodeRefusal matches httpx.Decode's refusals of a body's shape (a
// field it does not know, a value of another type), not the checks of
// the values that follow.
var decodeRefusal = regexp.MustCompile(`^unknown field|^field ".*" must be a .*, not `)

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// The controller serves the document at /openapi.json without a token,
// and what its routes answer on a cluster with VMs, a migration and
// intents has the documented shape: every key a property of its schema,
// every required key there, every value of its type and enum.
func TestOpenAPIReplies(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 8, 4096, 4096)
	ctx := context.Background()
	adm := tc.client
	tc.importFakeKernel(t, "guest")

	anon := *adm
	anon.Token = ""
	served, err := anon.OpenAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := controller.OpenAPI()
	if !bytes.Equal(served, bytes.TrimSpace(doc)) {
		t.Error("GET /openapi.json is not controller.OpenAPI()")
	}
	d, err := openapi.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := adm.CreateNetwork(ctx, api.CreateNetworkRequest{Name: "lan", Subnet: "10.99.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	tok, err := adm.CreateToken(ctx, api.CreateTokenRequest{Name: "alice", Project: "alpha", Role: api.RoleMember, ExpiresInHours: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.SetQuota(ctx, "alpha", api.Quota{VMs: 4}); err != nil {
		t.Fatal(err)
	}
	vm, err := adm.CreateVM(ctx, api.CreateVMRequest{Name: "web", Project: "alpha", Image: "guest", Pool: api.PoolShared,
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}, Networks: []api.NICRequest{{Network: "lan"}}})
	if err != nil {
		t.Fatal(err)
	}
	mig, err := adm.Migrate(ctx, vm.Name, api.MigrateRequest{Kind: api.KindLive})
	if err != nil {
		t.Fatal(err)
	}
	waitMigration(t, adm, mig.ID)
	in, err := adm.Resize(ctx, vm.Name, api.ResizeRequest{VCPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitIntent(t, adm, in.ID, 30*time.Second)

	for _, c := range []struct {
		method, pattern, path, body string
		status                      int
	}{
		{"GET", "/v1/version", "/v1/version", "", 200},
		{"GET", "/v1/whoami", "/v1/whoami", "", 200},
		{"GET", "/v1/hosts", "/v1/hosts", "", 200},
		{"GET", "/v1/hosts/{name}", "/v1/hosts/host1", "", 200},
		{"GET", "/v1/vms", "/v1/vms", "", 200},
		{"GET", "/v1/vms/{name}", "/v1/vms/web", "", 200},
		{"GET", "/v1/images", "/v1/images", "", 200},
		{"GET", "/v1/images/{name}", "/v1/images/guest", "", 200},
		{"GET", "/v1/networks", "/v1/networks", "", 200},
		{"GET", "/v1/networks/{name}", "/v1/networks/lan", "", 200},
		{"GET", "/v1/migrations", "/v1/migrations", "", 200},
		{"GET", "/v1/migrations/{id}", "/v1/migrations/" + mig.ID, "", 200},
		{"GET", "/v1/intents", "/v1/intents", "", 200},
		{"GET", "/v1/intents/{id}", "/v1/intents/" + in.ID, "", 200},
		{"GET", "/v1/cluster/settings", "/v1/cluster/settings", "", 200},
		{"GET", "/v1/tokens", "/v1/tokens", "", 200},
		{"GET", "/v1/projects", "/v1/projects", "", 200},
		{"GET", "/v1/projects/{name}", "/v1/projects/alpha", "", 200},
		{"GET", "/v1/audit", "/v1/audit", "", 200},
		{"POST", "/v1/vms/{name}/migrate", "/v1/vms/web/migrate", `{"dry_run":true}`, 200},
		{"POST", "/v1/hosts/{name}/drain", "/v1/hosts/host2/drain", `{"dry_run":true}`, 200},
		{"POST", "/v1/tokens/{id}/revoke", "/v1/tokens/" + tok.ID + "/revoke", "", 200},
		{"POST", "/v1/vms/{name}/{action}", "/v1/vms/web/reboot", "", 200},
		{"PATCH", "/v1/vms/{name}", "/v1/vms/web", `{"display_name":"Web server","description":"the front end","access_ipv4":"203.0.113.10","access_ipv6":"2001:db8::10"}`, 200},
		{"GET", "/v1/nope", "/v1/nope", "", 404}, // an Error
	} {
		req, _ := http.NewRequestWithContext(ctx, c.method, tc.url+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+adm.Token)
		if c.method != "GET" {
			req.Header.Set("Content-Type", api.MediaJSON)
		}
		resp, err := adm.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: HTTP %d, want %d: %s", c.method, c.path, resp.StatusCode, c.status, b)
			continue
		}
		var schema any = map[string]any{"$ref": "#/components/schemas/Error"}
		if c.status < 400 {
			if schema, err = d.Schema(c.method, c.pattern, c.status); err != nil {
				t.Error(err)
				continue
			}
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%s %s: %v", c.method, c.path, err)
			continue
		}
		if arr, ok := v.([]any); ok && len(arr) == 0 {
			t.Errorf("%s %s: an empty list shows nothing of its items' shape", c.method, c.path)
		}
		for _, e := range openapi.Conforms(d, schema, v, c.method+" "+c.path) {
			t.Error(e)
		}
	}

	// Every JSON request body as documented, with every field: the
	// handler decodes it strictly, so one that takes another type says
	// "unknown field" or "must be a". The paths name nothing that
	// exists, so what is decoded changes nothing after.
	for _, r := range api.Routes {
		schema, ok := d.RequestSchema(r.Method, r.Path)
		if r.Internal || !ok {
			continue
		}
		path := r.Path
		for _, p := range openapi.PathParams(r.Path) {
			path = strings.Replace(path, "{"+p+"}", "nope", 1)
		}
		body, _ := json.Marshal(d.Sample(schema))
		req, _ := http.NewRequestWithContext(ctx, r.Method, tc.url+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adm.Token)
		req.Header.Set("Content-Type", api.MediaJSON)
		resp, err := adm.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e api.Error
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode == http.StatusBadRequest && decodeRefusal.MatchString(e.Message) {
			t.Errorf("%s refuses its documented body %s: %s", r.Pattern(), body, e.Message)
		}
	}
}

// The request body types the document gives are the ones the controller
// decodes (found by type-checking its handlers, as for the fuzzer):
// none decoded that api.Routes does not give, none given that nothing
// decodes. The agents' bodies (package hostapi) are on internal routes.
func TestOpenAPIRequestTypesDecoded(t *testing.T) {
	documented := map[string]bool{}
	for _, r := range api.Routes {
		if r.Internal || r.Request == nil {
			continue
		}
		types := []any{r.Request.Type}
		for _, p := range r.Request.Parts {
			types = append(types, p.Type)
		}
		for _, v := range types {
			if v != nil {
				rt := reflect.TypeOf(v)
				documented[rt.PkgPath()+"."+rt.Name()] = true
			}
		}
	}
	decoded := map[string]bool{}
	for _, name := range httpxtest.DecodedTypes(t, ".") {
		decoded[name] = true
		if !documented[name] && !strings.Contains(name, "/internal/hostapi.") {
			t.Errorf("the controller decodes %s, which no route of api.Routes takes", name)
		}
	}
	for name := range documented {
		if !decoded[name] {
			t.Errorf("api.Routes gives %s as a request body, which the controller does not decode", name)
		}
	}
}

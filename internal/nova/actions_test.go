package nova

import (
	"testing"

	"github.com/godwit/godwit/api"
)

// Every server action served has its instance action name, so that none
// goes unlisted.
func TestActionNamesCoverMapping(t *testing.T) {
	for _, row := range Mapping {
		if actionNames[row.Nova] == "" {
			t.Errorf("server action %s has no instance action name (actionNames)", row.Nova)
		}
	}
}

// The caller is read back from what api.Principal.String wrote.
func TestCaller(t *testing.T) {
	for _, c := range []struct {
		p             api.Principal
		user, project string
	}{
		{api.Principal{Role: api.RoleMember, Name: "alice", Project: "alpha", TokenID: "0123456789ab"}, "0123456789ab", "alpha"},
		{api.Principal{Role: api.RoleAdmin, Name: "ops, project x (old)", Project: "default", TokenID: "ba9876543210"}, "ba9876543210", "default"},
		{api.Principal{Role: api.RoleAdmin, Name: "anyone", AuthDisabled: true}, "anyone", "default"},
	} {
		if user, project := caller(c.p.String()); user != c.user || project != c.project {
			t.Errorf("caller(%q) = %q, %q; want %q, %q", c.p.String(), user, project, c.user, c.project)
		}
	}
}

// Which audited requests are instance actions, and named how.
func TestActionName(t *testing.T) {
	const srv = "/compute/v2.1/servers/6f1c2a9e-0000-4000-8000-000000000001"
	for _, c := range []struct {
		method, path, action string
		status               int
		want                 string
	}{
		{"POST", "/compute/v2.1/servers", "", 202, "create"},
		{"POST", srv + "/action", "os-migrateLive", 202, "live-migration"},
		{"POST", srv + "/action", "os-stop", 202, "stop"},
		{"POST", srv + "/action", "os-start", 409, ""}, // refused: Nova records none
		{"POST", srv + "/action", "reboot", 500, "reboot"},
		{"POST", srv + "/action", "shelve", 400, ""},
		{"PUT", srv, "", 200, ""}, // an update is no action in Nova
		{"DELETE", srv, "", 204, "delete"},
		{"DELETE", srv + "/migrations/42", "", 202, "live_migration_cancel"},
		{"POST", "/v1/vms", "", 201, "create"},
		{"POST", "/v1/vms/web/stop", "", 200, "stop"},
		{"POST", "/v1/vms/web/migrate", "live", 202, "live-migration"},
		{"POST", "/v1/vms/web/migrate", "cold", 202, "migrate"},
		{"POST", "/v1/vms/web/resize", "", 200, ""}, // a plan
		{"POST", "/v1/vms/web/resize", "", 202, "resize"},
		{"PATCH", "/v1/vms/web", "", 200, ""},
		{"DELETE", "/v1/vms/web", "", 204, "delete"},
		{"POST", "/v1/intents/abc/confirm", "", 202, "confirmResize"},
		{"POST", "/v1/hosts/host1/drain", "", 202, ""},
	} {
		rec := api.AuditRecord{Method: c.method, Path: c.path, Action: c.action, Status: c.status, RequestID: "req-1"}
		if got := actionName(rec); got != c.want {
			t.Errorf("%s %s %s (%d): %q, want %q", c.method, c.path, c.action, c.status, got, c.want)
		}
	}
	if got := actionName(api.AuditRecord{Method: "POST", Path: "/v1/vms", Status: 201}); got != "" {
		t.Errorf("a record without a request ID (before godwit kept them): %q", got)
	}
}

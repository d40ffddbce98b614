package controller_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// TestNovaIdentityListings reads Keystone's listings with Debian's
// openstack client: godwit's tokens as users, its projects, roles and
// role assignments, the one domain; a member kept to itself; a write
// refused with the godwit command that does it.
func TestNovaIdentityListings(t *testing.T) {
	// Parallel: the clients are Python processes, mostly their start-up;
	// the suite runs them beside each other (see docs/testing.md).
	t.Parallel()
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 1)
	ctx := tc.ctx
	alice := tc.memberToken(t, "alice", "alpha")
	// A revoked token is a deleted user: not listed.
	carol := tc.memberToken(t, "carol", "alpha")
	if _, err := tc.client.RevokeToken(ctx, carol.ID); err != nil {
		t.Fatal(err)
	}
	// A project that only a quota names.
	if _, err := tc.client.SetQuota(ctx, "gamma", api.Quota{VMs: 2}); err != nil {
		t.Fatal(err)
	}
	var adminID string
	toks, err := tc.client.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.Name == "bootstrap-admin" {
			adminID = tok.ID
		}
	}
	os := newOpenStack(t, tc, map[string][3]string{
		"admin": {"bootstrap-admin", tc.adminToken, "default"},
		"alice": {"alice", alice.Secret, "alpha"},
	})
	column := func(rows []map[string]any, name string) []string {
		var out []string
		for _, r := range rows {
			s, _ := r[name].(string)
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	}

	// Projects: an admin sees every one; a member only its own (the
	// client falls back to the user's projects when refused the list).
	var projects []map[string]any
	os.json(&projects, "admin", "project", "list")
	if got := column(projects, "Name"); !slices.Equal(got, []string{"alpha", "default", "gamma"}) || !slices.Equal(column(projects, "ID"), got) {
		t.Errorf("admin's project list: %v", projects)
	}
	os.json(&projects, "alice", "project", "list")
	if got := column(projects, "ID"); !slices.Equal(got, []string{"alpha"}) {
		t.Errorf("alice's project list: %v", projects)
	}
	os.json(&projects, "alice", "project", "list", "--my-projects", "--long")
	if len(projects) != 1 || projects[0]["Name"] != "alpha" || projects[0]["Domain ID"] != "default" || projects[0]["Enabled"] != true {
		t.Errorf("alice's project list --my-projects: %v", projects)
	}

	// Users: the tokens not revoked, their IDs the tokens'.
	var users []map[string]any
	os.json(&users, "admin", "user", "list", "--long")
	if got := column(users, "Name"); !slices.Equal(got, []string{"alice", "bootstrap-admin"}) {
		t.Errorf("user list: %v", users)
	}
	for _, u := range users {
		want := map[string]string{"alice": alice.ID, "bootstrap-admin": adminID}[u["Name"].(string)]
		if u["ID"] != want || u["Domain"] != "default" || u["Enabled"] != true {
			t.Errorf("user list: %v; want ID %s, domain default, enabled", u, want)
		}
	}
	var user map[string]any
	os.json(&user, "admin", "user", "show", "alice")
	if user["id"] != alice.ID || user["name"] != "alice" || user["domain_id"] != "default" || user["default_project_id"] != "alpha" || user["enabled"] != true {
		t.Errorf("user show alice: %v", user)
	}
	os.json(&user, "alice", "user", "show", "alice") // itself, by its token's ID
	if user["id"] != alice.ID || user["default_project_id"] != "alpha" {
		t.Errorf("alice's user show alice: %v", user)
	}

	// Roles, and who holds which where.
	var roles []map[string]any
	os.json(&roles, "alice", "role", "list")
	if got := column(roles, "Name"); !slices.Equal(got, []string{"admin", "member", "reader"}) || !slices.Equal(column(roles, "ID"), got) {
		t.Errorf("role list: %v", roles)
	}
	var as []map[string]any
	os.json(&as, "admin", "role", "assignment", "list", "--user", "alice", "--names")
	if len(as) != 1 || as[0]["Role"] != "member" || as[0]["User"] != "alice@Default" || as[0]["Project"] != "alpha@Default" || as[0]["Inherited"] != false {
		t.Errorf("role assignment list --user alice --names: %v", as)
	}
	// An admin holds admin in every project, and member and reader by
	// implication.
	os.json(&as, "admin", "role", "assignment", "list", "--user", "bootstrap-admin", "--effective", "--names")
	if len(as) != 9 || !slices.Equal(slices.Compact(column(as, "Project")), []string{"alpha@Default", "default@Default", "gamma@Default"}) ||
		!slices.Equal(slices.Compact(column(as, "Role")), []string{"admin", "member", "reader"}) {
		t.Errorf("role assignment list --user bootstrap-admin --effective --names: %v", as)
	}

	var domains []map[string]any
	os.json(&domains, "alice", "domain", "list")
	if len(domains) != 1 || domains[0]["ID"] != "default" || domains[0]["Name"] != "Default" || domains[0]["Enabled"] != true {
		t.Errorf("domain list: %v", domains)
	}

	// Filters, and errors in Keystone's format, straight from the API.
	get := func(token, path string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, tc.url+"/identity/v3"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", token)
		resp, err := tc.client.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, out
	}
	for _, c := range []struct {
		token, path, key string
		n                int
	}{
		{tc.adminToken, "/users?name=alice", "users", 1},
		{tc.adminToken, "/users?domain_id=other", "users", 0},
		{tc.adminToken, "/projects?name=gamma", "projects", 1},
		{tc.adminToken, "/role_assignments", "role_assignments", 4}, // alice's member, admin's admin ×3
		{tc.adminToken, "/role_assignments?scope.project.id=gamma&effective", "role_assignments", 3},
		{tc.adminToken, "/role_assignments?role.id=reader", "role_assignments", 0},
		{tc.adminToken, "/role_assignments?role.id=reader&effective", "role_assignments", 4},
		{tc.adminToken, "/role_assignments?user.id=" + alice.ID + "&scope.project.id=default", "role_assignments", 0},
		{tc.adminToken, "/role_assignments?group.id=g", "role_assignments", 0},
		{alice.Secret, "/roles?name=member", "roles", 1},
		{alice.Secret, "/auth/projects", "projects", 1},
		{tc.adminToken, "/auth/projects", "projects", 3},
		{alice.Secret, "/auth/domains", "domains", 0},
	} {
		code, out := get(c.token, c.path)
		items, _ := out[c.key].([]any)
		links, _ := out["links"].(map[string]any)
		if code != 200 || len(items) != c.n || links["self"] != tc.url+"/identity/v3"+c.path {
			t.Errorf("GET %s: %d, want %d %s: %v", c.path, code, c.n, c.key, out)
		}
	}
	for _, c := range []struct {
		token, path string
		code        int
		msg         string
	}{
		{tc.adminToken, "/users/" + carol.ID, 404, "not revoked"},
		{tc.adminToken, "/projects/nope", 404, "godwit project list"},
		{tc.adminToken, "/roles/owner", 404, "admin, member and reader"},
		{tc.adminToken, "/domains/other", 404, "one domain"},
		{alice.Secret, "/users/" + adminID, 403, "only its own user"},
		{alice.Secret, "/users/" + adminID + "/projects", 403, "only its own user"},
		{alice.Secret, "/projects/default", 403, "only its own project"},
	} {
		code, out := get(c.token, c.path)
		e, _ := out["error"].(map[string]any)
		if msg, _ := e["message"].(string); code != c.code || e["code"] != float64(c.code) || !strings.Contains(msg, c.msg) {
			t.Errorf("GET %s: %d %v; want %d saying %q", c.path, code, out, c.code, c.msg)
		}
	}

	// Refused: a member listing users, and any write, with what to do.
	if out, err := os.try("alice", "user", "list"); err == nil || !strings.Contains(out, "needs the admin role") || !strings.Contains(out, "HTTP 403") {
		t.Errorf("alice's user list: %v\n%s", err, out)
	}
	if out, err := os.try("admin", "user", "create", "x"); err == nil || !strings.Contains(out, "godwit token create") || !strings.Contains(out, "HTTP 403") {
		t.Errorf("user create: %v\n%s", err, out)
	}
}

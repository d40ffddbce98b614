package nova

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
)

// Identity's listings: Keystone's users, projects, roles, role
// assignments and domains, read-only, as godwit's tokens, projects and
// roles (identity.go says how they map).
//
//   - A user is an API token that is not revoked (a revoked token is a
//     deleted user): its ID the token's, its name the token's, its
//     default project the token's project, its password_expires_at the
//     token's expiry.
//   - The projects are godwit's (those with a quota or VMs) and those
//     that a user's token names.
//   - A token holds one role in one project: a member its own, an admin
//     every project (it may scope itself to any). Those are the direct
//     assignments; an admin also holds member and reader, a member
//     reader, which Keystone calls implied roles (?effective lists them).
//   - One domain, Default; no assignment is on it, so /auth/domains
//     lists none, as Keystone does for a user with project roles only
//     (godwit issues no domain-scoped token).
//
// Nothing is written through Keystone: a write is refused with the
// godwit command that does it (refuseWrite).

func (a *API) identityListRoutes() []Route {
	v3 := IdentityPrefix + "/v3"
	return []Route{
		{"GET " + v3 + "/users", a.listUsers},
		{"GET " + v3 + "/users/{user_id}", a.showUser},
		{"GET " + v3 + "/users/{user_id}/projects", a.userProjects},
		{"GET " + v3 + "/projects", a.listProjects},
		{"GET " + v3 + "/projects/{project_id}", a.showProject},
		{"GET " + v3 + "/auth/projects", a.authProjects},
		{"GET " + v3 + "/roles", a.listRoles},
		{"GET " + v3 + "/roles/{role_id}", a.showRole},
		{"GET " + v3 + "/role_assignments", a.listRoleAssignments},
		{"GET " + v3 + "/domains", a.listDomains},
		{"GET " + v3 + "/domains/{domain_id}", a.showDomain},
		{"GET " + v3 + "/auth/domains", a.authDomains},

		{"POST " + v3 + "/users", refuseWrite("a Keystone user is a godwit API token: make one with godwit token create NAME --project PROJECT --role member|admin; its password is the token it prints")},
		{"PATCH " + v3 + "/users/{user_id}", refuseWrite("a godwit token's name, project and role are fixed when it is made: make another (godwit token create NAME --project PROJECT --role ROLE) and revoke this one (godwit token revoke {user_id})")},
		{"DELETE " + v3 + "/users/{user_id}", refuseWrite("a Keystone user is a godwit API token: revoke it with godwit token revoke {user_id}")},
		{"POST " + v3 + "/users/{user_id}/password", refuseWrite("a user's password is its godwit token, which never changes: ask an admin for a new one (godwit token create) and to revoke this one (godwit token revoke {user_id})")},
		{"POST " + v3 + "/projects", refuseWrite("a godwit project exists by being named: make a token in it (godwit token create NAME --project PROJECT) or give it a quota (godwit project quota PROJECT)")},
		{"PATCH " + v3 + "/projects/{project_id}", refuseWrite("a godwit project has nothing to set but its quota: godwit project quota {project_id} --vms N --vcpus N --memory-mib N --disk-mib N")},
		{"DELETE " + v3 + "/projects/{project_id}", refuseWrite("godwit does not delete projects: project {project_id} is a name its tokens, VMs and quota share; revoke its tokens (godwit token revoke ID) and delete its VMs to empty it")},
		{"PUT " + v3 + "/projects/{project_id}/users/{user_id}/roles/{role_id}", refuseWrite("a godwit token holds one role in one project, fixed when it is made: godwit token create NAME --project {project_id} --role admin|member makes one (an admin holds member and reader too)")},
		{"DELETE " + v3 + "/projects/{project_id}/users/{user_id}/roles/{role_id}", refuseWrite("a godwit token's role is fixed when it is made: revoke the token (godwit token revoke {user_id}) and make another (godwit token create)")},
	}
}

// refuseWrite answers a Keystone write with 403 Forbidden and the
// godwit command that does it ({name} is the path's value).
//
// 403, not 501: the operation exists and godwit does it, through its
// own command, by design never through Keystone — as Keystone's own
// read-only identity backends (LDAP) answer a write with 403 Forbidden.
// 501 Not Implemented would call it a gap in this server that a later
// version fills; none will: godwit's tokens are made by godwit.
func refuseWrite(msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := msg
		for _, name := range []string{"user_id", "project_id", "role_id"} {
			m = strings.ReplaceAll(m, "{"+name+"}", r.PathValue(name))
		}
		WriteError(w, r, errs.Forbidden("identity is read-only here: %s", m))
	}
}

// v3URL is the URL of an identity v3 path, as the client reached it.
func v3URL(r *http.Request, path ...string) string {
	return baseURL(r) + IdentityPrefix + "/v3/" + strings.Join(path, "/")
}

// writeList writes a Keystone collection: its items under key and its
// links (godwit's lists fit in one page).
func writeList[T any](w http.ResponseWriter, r *http.Request, key string, items []T) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{key: items, "links": map[string]any{
		"self": baseURL(r) + r.URL.RequestURI(), "previous": nil, "next": nil,
	}})
}

// want says whether a filter admits a value: an absent filter admits
// every one.
func want(q url.Values, key, value string) bool {
	return !q.Has(key) || q.Get(key) == value
}

// flag reads a boolean filter as Keystone does: present, and not one of
// its false words (a bare ?effective is true).
func flag(q url.Values, key string) bool {
	return q.Has(key) && !slices.Contains([]string{"0", "false", "f", "no", "n", "off"}, strings.ToLower(q.Get(key)))
}

// enabledOK: every user, project and domain is enabled.
func enabledOK(q url.Values) bool { return !q.Has("enabled") || flag(q, "enabled") }

// users are Keystone's users: the tokens not revoked, by name.
func (a *API) users(ctx context.Context) ([]api.Token, error) {
	ts, err := a.Svc.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	ts = slices.DeleteFunc(ts, func(t api.Token) bool { return !t.RevokedAt.IsZero() })
	slices.SortFunc(ts, func(x, y api.Token) int { return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.ID, y.ID)) })
	return ts, nil
}

// findUser is the user of a token ID.
func findUser(us []api.Token, id string) (api.Token, error) {
	if i := slices.IndexFunc(us, func(u api.Token) bool { return u.ID == id }); i >= 0 {
		return us[i], nil
	}
	return api.Token{}, errs.NotFound("could not find user %s: a user is a godwit API token that is not revoked, its ID the token's (godwit token list, openstack user list)", id)
}

// projects are Keystone's projects, by name: godwit's, with those the
// users' tokens name.
func (a *API) projects(ctx context.Context, users []api.Token) ([]string, error) {
	ps, err := a.Svc.Projects(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	for _, u := range users {
		names = append(names, u.Project)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// projectsOf are the projects a role in a project holds a role on: an
// admin every one, a member its own.
func projectsOf(role api.Role, project string, all []string) []string {
	if role == api.RoleAdmin {
		return all
	}
	return []string{project}
}

// usersAndProjects is every user and every project (the projects need
// the users: a project named only by a token is one).
func (a *API) usersAndProjects(ctx context.Context) ([]api.Token, []string, error) {
	us, err := a.users(ctx)
	if err != nil {
		return nil, nil, err
	}
	all, err := a.projects(ctx, us)
	return us, all, err
}

// allProjects are the projects, read for a caller that needs them all.
func (a *API) allProjects(ctx context.Context) ([]string, error) {
	_, all, err := a.usersAndProjects(ctx)
	return all, err
}

// ownUser refuses a member any user but itself.
func ownUser(ctx context.Context, userID string) error {
	p := auth.From(ctx)
	if p.Role == api.RoleAdmin || p.TokenID == userID {
		return nil
	}
	return errs.Forbidden("a member reads only its own user, %s (ID %s), not %s; the request came with the %s", p.Name, p.TokenID, userID, p)
}

func userView(r *http.Request, t api.Token) map[string]any {
	var expires any
	if !t.ExpiresAt.IsZero() {
		expires = t.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000000")
	}
	return map[string]any{
		"id": t.ID, "name": t.Name, "domain_id": domainID, "enabled": true,
		"default_project_id": t.Project, "password_expires_at": expires,
		"description": "godwit " + string(t.Role) + " token", "options": map[string]any{},
		"links": map[string]string{"self": v3URL(r, "users", t.ID)},
	}
}

func projectView(r *http.Request, name string) map[string]any {
	return map[string]any{
		"id": name, "name": name, "domain_id": domainID, "parent_id": domainID, "is_domain": false,
		"enabled": true, "description": "", "tags": []string{}, "options": map[string]any{},
		"links": map[string]string{"self": v3URL(r, "projects", name)},
	}
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := a.users(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	var out []map[string]any
	for _, u := range us {
		if want(q, "name", u.Name) && want(q, "domain_id", domainID) && enabledOK(q) {
			out = append(out, userView(r, u))
		}
	}
	writeList(w, r, "users", out)
}

// showUser: an admin reads any user, a member itself.
func (a *API) showUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("user_id")
	if err := ownUser(r.Context(), id); err != nil {
		WriteError(w, r, err)
		return
	}
	us, err := a.users(r.Context())
	if err == nil {
		var u api.Token
		if u, err = findUser(us, id); err == nil {
			writeJSON(w, http.StatusOK, map[string]any{"user": userView(r, u)})
			return
		}
	}
	WriteError(w, r, err)
}

// userProjects is a user's projects (what openstack project list
// --my-projects asks, and falls back to for a member): an admin's are
// every one, a member's its own; a member asks only of itself.
func (a *API) userProjects(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("user_id")
	if err := ownUser(r.Context(), id); err != nil {
		WriteError(w, r, err)
		return
	}
	us, all, err := a.usersAndProjects(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	u, err := findUser(us, id)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	a.writeProjects(w, r, projectsOf(u.Role, u.Project, all))
}

// authProjects is the caller's projects, those it may scope a token to.
func (a *API) authProjects(w http.ResponseWriter, r *http.Request) {
	p := auth.From(r.Context())
	all, err := a.allProjects(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	a.writeProjects(w, r, projectsOf(p.Role, p.Project, all))
}

func (a *API) listProjects(w http.ResponseWriter, r *http.Request) {
	all, err := a.allProjects(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	a.writeProjects(w, r, all)
}

// writeProjects writes projects as the query filters them.
func (a *API) writeProjects(w http.ResponseWriter, r *http.Request, names []string) {
	q := r.URL.Query()
	// No project is a domain, and none has tags.
	none := flag(q, "is_domain") || q.Get("tags") != "" || q.Get("tags-any") != ""
	var out []map[string]any
	for _, n := range names {
		if !none && want(q, "name", n) && want(q, "domain_id", domainID) && want(q, "parent_id", domainID) && enabledOK(q) {
			out = append(out, projectView(r, n))
		}
	}
	writeList(w, r, "projects", out)
}

// showProject: an admin reads any project, a member its own.
func (a *API) showProject(w http.ResponseWriter, r *http.Request) {
	id, p := r.PathValue("project_id"), auth.From(r.Context())
	if p.Role != api.RoleAdmin && id != p.Project {
		WriteError(w, r, errs.Forbidden("a member reads only its own project, %s, not %s; the request came with the %s", p.Project, id, p))
		return
	}
	all, err := a.allProjects(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if !slices.Contains(all, id) {
		WriteError(w, r, errs.NotFound("could not find project %s: a project exists when a token, a VM or a quota names it (godwit project list, godwit token list)", id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": projectView(r, id)})
}

// keystoneRole is a role, its ID its name.
type keystoneRole struct{ id, description string }

// keystoneRoles are godwit's, admin and member, and reader, which member
// implies (as Keystone's default roles do).
var keystoneRoles = []keystoneRole{
	{"admin", "godwit's admin: everything, in every project; implies member and reader (godwit token create --role admin)"},
	{"member", "godwit's member: its project's VMs; implies reader (godwit token create --role member)"},
	{"reader", "implied by member: godwit makes no read-only token"},
}

// heldRoles are the roles a token's role gives: itself and those it
// implies.
func heldRoles(role api.Role) []string {
	if role == api.RoleAdmin {
		return []string{"admin", "member", "reader"}
	}
	return []string{"member", "reader"}
}

func roleView(r *http.Request, i int) map[string]any {
	return map[string]any{
		"id": keystoneRoles[i].id, "name": keystoneRoles[i].id, "domain_id": nil, "description": keystoneRoles[i].description,
		"options": map[string]any{}, "links": map[string]string{"self": v3URL(r, "roles", keystoneRoles[i].id)},
	}
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var out []map[string]any
	for i := range keystoneRoles {
		// No role is a domain's.
		if want(q, "name", keystoneRoles[i].id) && q.Get("domain_id") == "" {
			out = append(out, roleView(r, i))
		}
	}
	writeList(w, r, "roles", out)
}

func (a *API) showRole(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("role_id")
	i := slices.IndexFunc(keystoneRoles, func(x keystoneRole) bool { return x.id == id })
	if i < 0 {
		WriteError(w, r, errs.NotFound("could not find role %s: godwit's roles are admin, member and reader", id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"role": roleView(r, i)})
}

// listRoleAssignments is each user's role on each of its projects,
// filtered by user.id, scope.project.id and role.id; ?effective adds
// the implied roles, ?include_names the names. Groups, domain and
// system scopes hold none.
func (a *API) listRoleAssignments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	us, all, err := a.usersAndProjects(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if q.Get("group.id") != "" || q.Get("scope.domain.id") != "" || q.Has("scope.system") || flag(q, "scope.OS-INHERIT:inherited_to") {
		us = nil
	}
	names, effective := flag(q, "include_names"), flag(q, "effective")
	domain := map[string]string{"id": domainID, "name": domainName}
	var out []map[string]any
	for _, u := range us {
		if !want(q, "user.id", u.ID) {
			continue
		}
		held := []string{string(u.Role)}
		if effective {
			held = heldRoles(u.Role)
		}
		for _, p := range projectsOf(u.Role, u.Project, all) {
			if !want(q, "scope.project.id", p) {
				continue
			}
			for _, role := range held {
				if !want(q, "role.id", role) {
					continue
				}
				user := map[string]any{"id": u.ID}
				project := map[string]any{"id": p}
				rl := map[string]any{"id": role}
				if names {
					user["name"], user["domain"] = u.Name, domain
					project["name"], project["domain"] = p, domain
					rl["name"] = role
				}
				links := map[string]string{"assignment": v3URL(r, "projects", p, "users", u.ID, "roles", string(u.Role))}
				if role != string(u.Role) {
					links["prior_role"] = v3URL(r, "roles", string(u.Role))
				}
				out = append(out, map[string]any{"user": user, "scope": map[string]any{"project": project}, "role": rl, "links": links})
			}
		}
	}
	writeList(w, r, "role_assignments", out)
}

func domainView(r *http.Request) map[string]any {
	return map[string]any{
		"id": domainID, "name": domainName, "enabled": true, "description": "godwit's one domain: every token and project is in it",
		"tags": []string{}, "options": map[string]any{}, "links": map[string]string{"self": v3URL(r, "domains", domainID)},
	}
}

func (a *API) listDomains(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var out []map[string]any
	if want(q, "name", domainName) && enabledOK(q) {
		out = append(out, domainView(r))
	}
	writeList(w, r, "domains", out)
}

func (a *API) showDomain(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("domain_id"); id != domainID {
		WriteError(w, r, errs.NotFound("could not find domain %s: godwit has one domain, %s (ID %s)", id, domainName, domainID))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"domain": domainView(r)})
}

// authDomains is the domains the caller holds a role on: none, for
// godwit's roles are on projects (see the top of this file).
func (a *API) authDomains(w http.ResponseWriter, r *http.Request) {
	writeList[map[string]any](w, r, "domains", nil)
}

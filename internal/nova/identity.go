package nova

import (
	"context"
	"net/http"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
)

// Identity: the subset of Keystone v3 that OpenStack's clients need to
// log in and find the other services.
//
// A Keystone user is a godwit API token: the user name is the token's
// name and the password is the token itself (godwit token create). The
// token Keystone hands back (X-Subject-Token) is that same godwit token,
// so every later call is authenticated, authorized and audited as a
// godwit call is. A project is a godwit project, its ID its name; the
// roles are godwit's (an admin also holds member and reader, as in
// Keystone). There is one domain, Default.

const (
	identityVersion = "v3.14"
	region          = "RegionOne"
	domainID        = "default"
	domainName      = "Default"
)

func (a *API) identityRoutes() []Route {
	return append([]Route{
		{"GET " + IdentityPrefix + "/{$}", a.identityVersions},
		{"GET " + IdentityPrefix, a.identityVersions},
		{"GET " + IdentityPrefix + "/v3/{$}", a.identityVersion},
		{"GET " + IdentityPrefix + "/v3", a.identityVersion},
		{"POST " + IdentityPrefix + "/v3/auth/tokens", a.issueToken},
		{"GET " + IdentityPrefix + "/v3/auth/tokens", a.validateToken},
	}, a.identityListRoutes()...)
}

func (a *API) versionV3(r *http.Request) map[string]any {
	return map[string]any{
		"id": identityVersion, "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []map[string]string{{"rel": "self", "href": baseURL(r) + IdentityPrefix + "/v3/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

// identityVersions is Keystone's root: the versions it serves, with 300
// Multiple Choices as Keystone answers.
func (a *API) identityVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{a.versionV3(r)}}})
}

func (a *API) identityVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": a.versionV3(r)})
}

type named struct {
	ID     string `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
	Domain *named `json:"domain,omitempty"`
}

type tokenRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User struct {
					named
					Password string `json:"password"`
				} `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope *struct {
			Project *named `json:"project"`
		} `json:"scope"`
	} `json:"auth"`
}

// issueToken is POST /v3/auth/tokens: a password (a godwit token and its
// name) or a token, and a project scope.
func (a *API) issueToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := decode(r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	id := req.Auth.Identity
	var secret, user string
	var method string
	switch {
	case id.Password != nil:
		method, secret = "password", id.Password.User.Password
		user = id.Password.User.Name
		if user == "" {
			user = id.Password.User.ID
		}
	case id.Token != nil:
		method, secret = "token", id.Token.ID
	default:
		WriteError(w, r, errs.Invalid("give the password method (user name and password) or the token method"))
		return
	}
	p, err := a.principal(r.Context(), secret)
	if err != nil {
		WriteError(w, r, errs.Unauthenticated("the password is a godwit API token (godwit token create): %v", err))
		return
	}
	if method == "password" && !p.AuthDisabled && user != p.Name && user != p.TokenID {
		WriteError(w, r, errs.Unauthenticated("user %q does not hold this password: the user name is the token's name (%s); godwit token list shows both", user, p.Name))
		return
	}
	project := ""
	if s := req.Auth.Scope; s != nil && s.Project != nil {
		project = s.Project.Name
		if project == "" {
			project = s.Project.ID
		}
		if err := api.ValidateName("project", project); err != nil {
			WriteError(w, r, errs.Invalid("%v", err))
			return
		}
		if p.Role != api.RoleAdmin && project != p.Project {
			WriteError(w, r, errs.Unauthenticated("the token %s is a member of project %s, not %s: scope it to %s", p.Name, p.Project, project, p.Project))
			return
		}
	}
	w.Header().Set("X-Subject-Token", secret)
	writeJSON(w, http.StatusCreated, map[string]any{"token": a.tokenBody(r, p, method, project)})
}

// validateToken is GET /v3/auth/tokens: the token of X-Subject-Token,
// as the caller's (X-Auth-Token) may see it: its own, or any for an
// admin.
func (a *API) validateToken(w http.ResponseWriter, r *http.Request) {
	caller := auth.From(r.Context())
	subject := r.Header.Get("X-Subject-Token")
	p, err := a.principal(r.Context(), subject)
	if err != nil {
		WriteError(w, r, errs.NotFound("the token of X-Subject-Token is not valid: %v", err))
		return
	}
	if caller.Role != api.RoleAdmin && p.TokenID != caller.TokenID {
		WriteError(w, r, errs.Forbidden("a member may validate only its own token"))
		return
	}
	w.Header().Set("X-Subject-Token", subject)
	writeJSON(w, http.StatusOK, map[string]any{"token": a.tokenBody(r, p, "token", p.Project)})
}

// principal is whom a godwit token names; a cluster without a CA asks
// nothing, as its API does not.
func (a *API) principal(ctx context.Context, secret string) (api.Principal, error) {
	if auth.From(ctx).AuthDisabled {
		return auth.From(ctx), nil
	}
	return a.Svc.Authenticate(ctx, secret)
}

func (a *API) tokenBody(r *http.Request, p api.Principal, method, project string) map[string]any {
	now := time.Now().UTC()
	domain := map[string]string{"id": domainID, "name": domainName}
	userID := p.TokenID
	if userID == "" {
		userID = p.Name
	}
	var roles []map[string]string
	for _, role := range heldRoles(p.Role) {
		roles = append(roles, map[string]string{"id": role, "name": role})
	}
	t := map[string]any{
		"methods":    []string{method},
		"user":       map[string]any{"id": userID, "name": p.Name, "domain": domain, "password_expires_at": nil},
		"audit_ids":  []string{userID},
		"issued_at":  now.Format("2006-01-02T15:04:05.000000Z"),
		"expires_at": now.Add(24 * time.Hour).Format("2006-01-02T15:04:05.000000Z"),
	}
	if project != "" {
		t["project"] = map[string]any{"id": project, "name": project, "domain": domain}
		t["is_domain"] = false
		t["roles"] = roles
		t["catalog"] = a.catalog(r)
	}
	return t
}

// catalog points every service at this controller.
func (a *API) catalog(r *http.Request) []map[string]any {
	base := baseURL(r)
	entry := func(typ, name, url string) map[string]any {
		var eps []map[string]string
		for _, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]string{"id": name + "-" + iface, "interface": iface, "region": region, "region_id": region, "url": url})
		}
		return map[string]any{"id": name, "type": typ, "name": name, "endpoints": eps}
	}
	return []map[string]any{
		entry("identity", "keystone", base+IdentityPrefix),
		entry("compute", "nova", base+ComputePrefix+"/v2.1"),
		entry("image", "glance", base+ImagePrefix),
	}
}

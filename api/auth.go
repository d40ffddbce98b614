package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Role is what a token may do (docs/security.md, "Who may do what").
type Role string

const (
	// RoleMember acts on its own project's VMs (create, delete, start,
	// stop, resize, rebuild, console) and sees only its project.
	RoleMember Role = "member"
	// RoleAdmin may do everything: move VMs (migrate, drain, evacuate),
	// and manage hosts, images, networks, settings, projects and tokens.
	RoleAdmin Role = "admin"
	// RoleHost is an agent, known by its host certificate, never a token.
	RoleHost Role = "host"
)

// Token is an API token as listed: never its secret, which is shown once
// when it is made and kept only as a hash.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"` // what it is for, e.g. "ci" or "alice"
	Project   string    `json:"project"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"` // the token that made it
	ExpiresAt time.Time `json:"expires_at,omitzero"`  // zero: never
	RevokedAt time.Time `json:"revoked_at,omitzero"`  // zero: not revoked
}

// CreateTokenRequest is the body of POST /v1/tokens.
type CreateTokenRequest struct {
	Name    string `json:"name"`
	Project string `json:"project,omitempty"` // default "default"
	Role    Role   `json:"role,omitempty"`    // default member
	// ExpiresInHours bounds the token's life; 0: it never expires.
	ExpiresInHours int `json:"expires_in_hours,omitempty"`
}

// MaxTokenHours is the longest expiry a token may be given (ten years).
const MaxTokenHours = 10 * 365 * 24

// Validate checks a token request's fields.
func (r CreateTokenRequest) Validate() error {
	if err := ValidateName("token", r.Name); err != nil {
		return err
	}
	if r.Project != "" {
		if err := ValidateName("project", r.Project); err != nil {
			return err
		}
	}
	switch r.Role {
	case "", RoleMember, RoleAdmin:
	default:
		return fmt.Errorf("role %q is unknown; use %s or %s", r.Role, RoleMember, RoleAdmin)
	}
	if r.ExpiresInHours < 0 || r.ExpiresInHours > MaxTokenHours {
		return fmt.Errorf("expires_in_hours must be between 0 (never) and %d, not %d", MaxTokenHours, r.ExpiresInHours)
	}
	return nil
}

// CreatedToken is the reply to POST /v1/tokens: the token and, this once,
// its secret.
type CreatedToken struct {
	Token
	Secret string `json:"secret"`
}

// Principal is who a request is from: a token's holder or a host.
type Principal struct {
	Role    Role   `json:"role"`
	Project string `json:"project,omitempty"` // a member's project
	Name    string `json:"name"`              // the token's name, or the host's
	TokenID string `json:"token_id,omitempty"`
	// AuthDisabled is set on a cluster without a CA: no token is asked,
	// and every caller is an admin.
	AuthDisabled bool `json:"auth_disabled,omitempty"`
}

// String names a principal in audit records and messages.
func (p Principal) String() string {
	switch {
	case p.AuthDisabled:
		return "anyone (no authentication)"
	case p.Role == RoleHost:
		return "host " + p.Name
	case p.Role == "":
		return "anonymous"
	}
	return string(p.Role) + " token " + p.TokenID + " (" + p.Name + ", project " + p.Project + ")"
}

// Quota bounds what a project's VMs may hold in all, whatever their
// state. A zero field is no limit.
type Quota struct {
	VMs       int `json:"vms"`
	VCPUs     int `json:"vcpus"`
	MemoryMiB int `json:"memory_mib"`
	DiskMiB   int `json:"disk_mib"`
}

// Validate checks that no limit is negative.
func (q Quota) Validate() error {
	if q.VMs < 0 || q.VCPUs < 0 || q.MemoryMiB < 0 || q.DiskMiB < 0 {
		return fmt.Errorf("quota limits are counts and sizes: 0 (no limit) or more")
	}
	return nil
}

// Project is a project's quota and what its VMs use.
type Project struct {
	Name      string    `json:"name"`
	Quota     Quota     `json:"quota"`
	Usage     Quota     `json:"usage"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// AuditRecord is one mutating request: who, what, when, and the result.
type AuditRecord struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Who    string    `json:"who"` // Principal.String()
	Role   Role      `json:"role,omitempty"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Status int       `json:"status"`
	Error  string    `json:"error,omitempty"` // the error's message, when it failed
	Remote string    `json:"remote,omitempty"`
	// DurationMS is how long the request took to be answered.
	DurationMS int64 `json:"duration_ms"`
	// RequestID is the ID the reply carried in its X-Request-Id header
	// (and, on OpenStack's APIs, X-Openstack-Request-Id): a client's
	// log and this record meet on it.
	RequestID string `json:"request_id,omitempty"`
	// VMID is the VM the request acted on, by ID — the one its path
	// names (a VM's name, a Nova server's ID, an intent's VM) or the one
	// it created — and Project that VM's project; both empty for a
	// request about no one VM, and for one the policy refused. They
	// outlive the VM: Nova's instance actions are read from them.
	VMID    string `json:"vm_id,omitempty"`
	Project string `json:"project,omitempty"`
	// Action is what the request asked where its path does not say: a
	// Nova server action's name (the body's one key, e.g. os-stop) or a
	// migration's kind (live, cold).
	Action string `json:"action,omitempty"`
}

// AuditFilter narrows GET /v1/audit.
type AuditFilter struct {
	Since time.Time // only records at or after
	Limit int       // newest first; 0: 100
	VMID  string    // only the requests that acted on this VM (AuditRecord.VMID)
}

// Whoami returns who the client's token says it is.
func (c *Client) Whoami(ctx context.Context) (Principal, error) {
	var p Principal
	err := c.Do(ctx, http.MethodGet, "/v1/whoami", nil, &p)
	return p, err
}

// CreateToken makes a token; its secret is in the reply only.
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (CreatedToken, error) {
	var t CreatedToken
	err := c.Do(ctx, http.MethodPost, "/v1/tokens", req, &t)
	return t, err
}

// Tokens lists tokens, revoked ones too.
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var ts []Token
	err := c.Do(ctx, http.MethodGet, "/v1/tokens", nil, &ts)
	return ts, err
}

// RevokeToken revokes a token by ID: it is refused from then on.
func (c *Client) RevokeToken(ctx context.Context, id string) (Token, error) {
	var t Token
	err := c.Do(ctx, http.MethodPost, "/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, &t)
	return t, err
}

// Projects lists projects: those with a quota or with VMs.
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var ps []Project
	err := c.Do(ctx, http.MethodGet, "/v1/projects", nil, &ps)
	return ps, err
}

// Project returns a project's quota and usage.
func (c *Client) Project(ctx context.Context, name string) (Project, error) {
	var p Project
	err := c.Do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(name), nil, &p)
	return p, err
}

// SetQuota sets a project's quota (all four limits; 0 is no limit).
func (c *Client) SetQuota(ctx context.Context, project string, q Quota) (Project, error) {
	var p Project
	err := c.Do(ctx, http.MethodPut, "/v1/projects/"+url.PathEscape(project)+"/quota", q, &p)
	return p, err
}

// Audit lists audit records, newest first.
func (c *Client) Audit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	q := url.Values{}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.VMID != "" {
		q.Set("vm_id", f.VMID)
	}
	path := "/v1/audit"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var rs []AuditRecord
	err := c.Do(ctx, http.MethodGet, path, nil, &rs)
	return rs, err
}

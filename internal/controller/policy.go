package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/audit"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/nova"
	"github.com/godwit/godwit/internal/service"
	"github.com/godwit/godwit/internal/store"
)

// Who may call each route, in one table: the policy. A route without a
// rule cannot be registered (routes.HandleFunc panics), so a new route
// is never open by omission. docs/security.md has it as a table for
// people.
//
// In a cluster without a CA nothing is asked: every caller is an admin
// (api.Principal.AuthDisabled), as on a lab's loopback. With a CA, users
// present an API token (Authorization: Bearer) over HTTPS and agents
// their host's certificate.
var policy = map[string]rule{
	"GET /v1/version":   {access: anyone},
	"GET /openapi.json": {access: anyone}, // the API's description, the same for everyone
	"GET /v1/whoami":    {access: member},
	// Joining carries its own one-time secret.
	"POST /v1/join":               {access: anyone},
	"POST /v1/internal/heartbeat": {access: host, quiet: true},

	"GET /v1/hosts":                      {access: admin},
	"GET /v1/hosts/{name}":               {access: admin},
	"POST /v1/hosts/{name}/enable":       {access: admin},
	"POST /v1/hosts/{name}/disable":      {access: admin},
	"POST /v1/hosts/{name}/join-token":   {access: admin},
	"POST /v1/hosts/{name}/revoke":       {access: admin},
	"POST /v1/hosts/{name}/drain":        {access: admin},
	"POST /v1/hosts/{name}/evacuate":     {access: admin},
	"GET /v1/cluster/settings":           {access: admin},
	"PATCH /v1/cluster/settings":         {access: admin},
	"POST /v1/vms/{name}/migrate":        {access: admin},
	"POST /v1/migrations/{id}/abort":     {access: admin},
	"POST /v1/migrations/{id}/complete":  {access: admin},
	"POST /v1/images":                    {access: admin},
	"DELETE /v1/images/{name}":           {access: admin},
	"POST /v1/networks":                  {access: admin},
	"DELETE /v1/networks/{name}":         {access: admin},
	"POST /v1/tokens":                    {access: admin},
	"GET /v1/tokens":                     {access: admin},
	"POST /v1/tokens/{id}/revoke":        {access: admin},
	"GET /v1/projects":                   {access: admin},
	"PUT /v1/projects/{name}/quota":      {access: admin},
	"GET /v1/audit":                      {access: admin},
	"GET /metrics":                       {access: admin},
	"GET /v1/images/{name}/files/{role}": {access: host}, // an agent fetching a base

	// What every project shares, read-only.
	"GET /v1/images":          {access: member},
	"GET /v1/images/{name}":   {access: member},
	"GET /v1/networks":        {access: member},
	"GET /v1/networks/{name}": {access: member},

	// Stored flavors: every project reads them, admins make and delete
	// them.
	"GET /v1/flavors":           {access: member},
	"GET /v1/flavors/{name}":    {access: member},
	"POST /v1/flavors":          {access: admin},
	"DELETE /v1/flavors/{name}": {access: admin},

	// Key pairs: each is a token's; a member reaches its own only (the
	// handler: service.KeyPairOwner), an admin every token's.
	"GET /v1/keypairs":           {access: member, scope: listed},
	"POST /v1/keypairs":          {access: member},
	"GET /v1/keypairs/{name}":    {access: member},
	"DELETE /v1/keypairs/{name}": {access: member},

	// A member's own project.
	"GET /v1/projects/{name}":      {access: member, scope: projectPath},
	"GET /v1/vms":                  {access: member, scope: listed},
	"POST /v1/vms":                 {access: member, scope: bodyProject},
	"GET /v1/vms/{name}":           {access: member, scope: vmPath},
	"PATCH /v1/vms/{name}":         {access: member, scope: vmPath},
	"DELETE /v1/vms/{name}":        {access: member, scope: vmPath},
	"POST /v1/vms/{name}/{action}": {access: member, scope: vmPath},
	"GET /v1/vms/{name}/console":   {access: member, scope: vmPath},
	"POST /v1/vms/{name}/lock":     {access: member, scope: vmPath},
	"POST /v1/vms/{name}/unlock":   {access: member, scope: vmPath},
	"POST /v1/vms/{name}/resize":   {access: member, scope: vmPath},
	"POST /v1/vms/{name}/rebuild":  {access: member, scope: vmPath},
	"GET /v1/migrations":           {access: member, scope: listed},
	"GET /v1/migrations/{id}":      {access: member, scope: migrationPath},
	"GET /v1/intents":              {access: member, scope: listed},
	"GET /v1/intents/{id}":         {access: member, scope: intentPath},
	"POST /v1/intents/{id}/cancel": {access: member, scope: ownIntentPath},
	"GET /v1/events":               {access: member, scope: listed}, // the handler passes a member its project's only

	// A held resize's or cold migration's confirm and revert: as its
	// cancel (a migration's intent is an admin's).
	"POST /v1/intents/{id}/confirm": {access: member, scope: ownIntentPath},
	"POST /v1/intents/{id}/revert":  {access: member, scope: ownIntentPath},

	// The dashboard's files (package ui): they hold no data, and the page
	// logs in with a token like any client. Not the REST API, so not in
	// api.Routes.
	"GET /{$}":          {access: anyone, page: true},
	"GET /ui/{file...}": {access: anyone, page: true},

	// OpenStack's APIs (package nova): Keystone's and Nova's version
	// documents and the token request (which carries its own password,
	// a godwit token) are open; the rest as godwit's own routes. A
	// server action's role is its row's in nova.Mapping.
	"GET /identity/{$}":                                                       {access: anyone, openstack: true},
	"GET /identity":                                                           {access: anyone, openstack: true},
	"GET /identity/v3/{$}":                                                    {access: anyone, openstack: true},
	"GET /identity/v3":                                                        {access: anyone, openstack: true},
	"POST /identity/v3/auth/tokens":                                           {access: anyone, openstack: true},
	"GET /identity/v3/auth/tokens":                                            {access: member, openstack: true},
	"GET /compute/{$}":                                                        {access: anyone, openstack: true},
	"GET /compute":                                                            {access: anyone, openstack: true},
	"GET /compute/v2.1/{$}":                                                   {access: anyone, openstack: true},
	"GET /compute/v2.1":                                                       {access: anyone, openstack: true},
	"GET /compute/v2.1/servers":                                               {access: member, scope: listed, openstack: true},
	"GET /compute/v2.1/servers/detail":                                        {access: member, scope: listed, openstack: true},
	"POST /compute/v2.1/servers":                                              {access: member, openstack: true}, // in the caller's project
	"GET /compute/v2.1/servers/{server_id}":                                   {access: member, scope: serverPath, openstack: true},
	"PUT /compute/v2.1/servers/{server_id}":                                   {access: member, scope: serverPath, openstack: true},
	"DELETE /compute/v2.1/servers/{server_id}":                                {access: member, scope: serverPath, openstack: true},
	"POST /compute/v2.1/servers/{server_id}/action":                           {access: member, scope: serverPath, openstack: true},
	"GET /compute/v2.1/limits":                                                {access: member, openstack: true}, // the caller's project's
	"GET /compute/v2.1/os-availability-zone":                                  {access: member, openstack: true},
	"GET /compute/v2.1/os-availability-zone/detail":                           {access: member, openstack: true},
	"GET /compute/v2.1/flavors":                                               {access: member, openstack: true},
	"GET /compute/v2.1/flavors/detail":                                        {access: member, openstack: true},
	"GET /compute/v2.1/flavors/{flavor_id}":                                   {access: member, openstack: true},
	"GET /compute/v2.1/flavors/{flavor_id}/os-extra_specs":                    {access: member, openstack: true},
	"POST /compute/v2.1/flavors":                                              {access: admin, openstack: true},
	"DELETE /compute/v2.1/flavors/{flavor_id}":                                {access: admin, openstack: true},
	"GET /compute/v2.1/os-keypairs":                                           {access: member, scope: listed, openstack: true}, // the caller's (user_id: an admin's choice)
	"POST /compute/v2.1/os-keypairs":                                          {access: member, openstack: true},
	"GET /compute/v2.1/os-keypairs/{keypair_name}":                            {access: member, openstack: true},
	"DELETE /compute/v2.1/os-keypairs/{keypair_name}":                         {access: member, openstack: true},
	"GET /compute/v2.1/os-migrations":                                         {access: admin, openstack: true},
	"GET /compute/v2.1/servers/{server_id}/migrations":                        {access: admin, openstack: true},
	"GET /compute/v2.1/servers/{server_id}/migrations/{migration_id}":         {access: admin, openstack: true},
	"POST /compute/v2.1/servers/{server_id}/migrations/{migration_id}/action": {access: admin, openstack: true},
	"DELETE /compute/v2.1/servers/{server_id}/migrations/{migration_id}":      {access: admin, openstack: true},
	"GET /compute/v2.1/servers/{server_id}/os-instance-actions":               {access: member, scope: serverPath, openstack: true}, // a deleted server's (2.21): the handler keeps a member to its project's, by the audit records
	"GET /compute/v2.1/servers/{server_id}/os-instance-actions/{request_id}":  {access: member, scope: serverPath, openstack: true},
	"GET /compute/v2.1/os-hypervisors":                                        {access: admin, openstack: true},
	"GET /compute/v2.1/os-hypervisors/detail":                                 {access: admin, openstack: true},
	"GET /compute/v2.1/os-hypervisors/statistics":                             {access: admin, openstack: true},
	"GET /compute/v2.1/os-hypervisors/{hypervisor_id}":                        {access: admin, openstack: true},
	"GET /compute/v2.1/os-hypervisors/{hypervisor_id}/uptime":                 {access: admin, openstack: true},
	"GET /compute/v2.1/os-hypervisors/{hypervisor_id}/servers":                {access: admin, openstack: true},
	"GET /compute/v2.1/os-hypervisors/{hypervisor_id}/search":                 {access: admin, openstack: true},
	"GET /compute/v2.1/os-aggregates":                                         {access: admin, openstack: true},
	"GET /compute/v2.1/os-services":                                           {access: admin, openstack: true},
	"PUT /compute/v2.1/os-services/{action}":                                  {access: admin, openstack: true},
	"GET /image/{$}":                                                          {access: anyone, openstack: true},
	"GET /image":                                                              {access: anyone, openstack: true},
	"GET /image/v2/images":                                                    {access: member, openstack: true},
	"GET /image/v2/images/{image_id}":                                         {access: member, openstack: true},

	// Quota sets (nova/quotas.go): godwit's project quotas. A member
	// reads its own project's (the handler refuses another's, 403) and
	// the defaults, which are every project's; admins read any and set
	// or reset them.
	"GET /compute/v2.1/os-quota-sets/{tenant_id}":          {access: member, openstack: true}, // a member: its project only (the handler)
	"GET /compute/v2.1/os-quota-sets/{tenant_id}/detail":   {access: member, openstack: true}, // a member: its project only (the handler)
	"GET /compute/v2.1/os-quota-sets/{tenant_id}/defaults": {access: member, openstack: true},
	"PUT /compute/v2.1/os-quota-sets/{tenant_id}":          {access: admin, openstack: true},
	"DELETE /compute/v2.1/os-quota-sets/{tenant_id}":       {access: admin, openstack: true},

	// Keystone's listings, read-only (nova/identity_list.go): users
	// (tokens), projects and role assignments are an admin's; a member
	// reads its own user and its user's projects (the handler refuses it
	// another user's ID, 403) and its own project (another's, 403); the
	// roles and the one domain are everyone's. Every write is refused
	// (403) with the godwit command that does it.
	"GET /identity/v3/users":                                                    {access: admin, openstack: true},
	"GET /identity/v3/users/{user_id}":                                          {access: member, openstack: true}, // a member: itself only (the handler)
	"GET /identity/v3/users/{user_id}/projects":                                 {access: member, openstack: true}, // a member: itself only (the handler)
	"GET /identity/v3/projects":                                                 {access: admin, openstack: true},
	"GET /identity/v3/projects/{project_id}":                                    {access: member, openstack: true}, // a member: its project only (the handler)
	"GET /identity/v3/auth/projects":                                            {access: member, openstack: true}, // the caller's
	"GET /identity/v3/roles":                                                    {access: member, openstack: true},
	"GET /identity/v3/roles/{role_id}":                                          {access: member, openstack: true},
	"GET /identity/v3/role_assignments":                                         {access: admin, openstack: true},
	"GET /identity/v3/domains":                                                  {access: member, openstack: true},
	"GET /identity/v3/domains/{domain_id}":                                      {access: member, openstack: true},
	"GET /identity/v3/auth/domains":                                             {access: member, openstack: true}, // the caller's: none
	"POST /identity/v3/users":                                                   {access: admin, openstack: true},
	"PATCH /identity/v3/users/{user_id}":                                        {access: admin, openstack: true},
	"DELETE /identity/v3/users/{user_id}":                                       {access: admin, openstack: true},
	"POST /identity/v3/users/{user_id}/password":                                {access: member, openstack: true}, // Keystone's users change their own: refused to all, with what to ask for
	"POST /identity/v3/projects":                                                {access: admin, openstack: true},
	"PATCH /identity/v3/projects/{project_id}":                                  {access: admin, openstack: true},
	"DELETE /identity/v3/projects/{project_id}":                                 {access: admin, openstack: true},
	"PUT /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}":    {access: admin, openstack: true},
	"DELETE /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}": {access: admin, openstack: true},
}

// rule is who may call one route.
type rule struct {
	access access
	scope  scope
	// quiet routes are not audited: a host's heartbeat every second
	// would bury the requests people make.
	quiet bool
	// page routes serve the dashboard's files, and openstack routes
	// OpenStack's APIs (package nova), not godwit's REST API: both are
	// left out of api.Routes and the OpenAPI document.
	page, openstack bool
}

// access is the least a caller must be.
type access int

const (
	anyone access = iota // no credentials
	member               // any valid token (admins too)
	admin                // an admin's token
	host                 // a host's certificate (admins too)
)

func (a access) String() string {
	switch a {
	case anyone:
		return "anyone"
	case member:
		return "member"
	case admin:
		return "admin"
	case host:
		return "host"
	}
	return fmt.Sprintf("access(%d)", int(a))
}

// scope is how a member is kept to its own project on a route.
type scope int

const (
	global        scope = iota // nothing of a project's in the path
	vmPath                     // {name} is a VM of the member's project; another's answers 404
	migrationPath              // {id} is a migration of the member's project's VM
	intentPath                 // {id} is an intent about the member's project's VM
	ownIntentPath              // intentPath, and only a resize or rebuild (what members start)
	projectPath                // {name} is the member's project
	listed                     // the handler lists only the member's project (scoped)
	bodyProject                // the request body names the project (ownProject)
	serverPath                 // {server_id} is the ID of a VM of the member's project (Nova's servers)
)

// routes is a ServeMux whose every route goes through its rule.
type routes struct {
	*http.ServeMux
	c *Controller
}

// HandleFunc registers h behind pattern's rule; a pattern without one
// is a bug, caught when the handler is built (every test does).
func (m routes) HandleFunc(pattern string, h http.HandlerFunc) {
	rl, ok := policy[pattern]
	if !ok {
		panic("controller: route " + pattern + " has no rule in the policy table")
	}
	m.ServeMux.HandleFunc(pattern, m.c.guard(pattern, rl, h))
}

// guard authenticates a request, applies its route's rule, and audits it
// when it changes something.
//
// Every reply carries the request's ID (X-Request-Id; on OpenStack's
// APIs their headers too), the one its audit record keeps.
//
// It times every request for the metrics under its route's pattern —
// never the raw path, whose VM names and IDs would make a series each.
func (c *Controller) guard(pattern string, rl rule, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := httpx.NewStatusWriter(w)
		defer func() { c.cfg.Metrics.APIRequest(pattern, sw.Status, time.Since(start)) }()
		w = sw
		id := "req-" + service.NewID()
		w.Header().Set("X-Request-Id", id)
		nova.RequestIDHeaders(w.Header(), r.URL.Path, id)
		ctx, note := audit.With(r.Context())
		r = r.WithContext(ctx)
		p, err := c.principal(r)
		if err == nil {
			err = c.authorize(r.Context(), pattern, rl, p, r)
		}
		if api.IsWrite(r.Method) && !rl.quiet {
			if err == nil {
				c.noteTarget(r, rl.scope)
			}
			rec := &auditWriter{ResponseWriter: w, status: http.StatusOK}
			defer func() { c.audit(r, p, rec, start, id, note) }()
			w = rec
		}
		if err != nil {
			if errs.Code(err) == api.CodeUnauthenticated {
				w.Header().Set("WWW-Authenticate", `Bearer realm="godwit"`)
			}
			c.fail(w, r, err)
			return
		}
		h(w, r.WithContext(auth.With(r.Context(), p)))
	}
}

// principal is who sent r: a host by its certificate, a token's holder,
// or anonymous (zero Role). A token that is not valid is an error.
func (c *Controller) principal(r *http.Request) (api.Principal, error) {
	if c.tls == nil {
		return api.Principal{Role: api.RoleAdmin, Name: "anyone", AuthDisabled: true}, nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		name, err := c.hostOf(r)
		if err != nil {
			return api.Principal{}, errs.Forbidden("%v", err)
		}
		return api.Principal{Role: api.RoleHost, Name: name}, nil
	}
	if tok := auth.Bearer(r.Header.Get("Authorization")); tok != "" {
		return c.svc.Authenticate(r.Context(), tok)
	}
	// OpenStack's clients send their token so (package nova): the same
	// godwit token, which Keystone's subset hands out as is.
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		return c.svc.Authenticate(r.Context(), tok)
	}
	if r.Header.Get("Authorization") != "" {
		return api.Principal{}, errs.Unauthenticated("only bearer tokens are accepted: Authorization: Bearer gwt_…")
	}
	return api.Principal{}, nil
}

// authorize applies rl to p: 401 without credentials, 403 with the
// reason for a role that may not, 404 for another project's object (its
// existence is not given away).
func (c *Controller) authorize(ctx context.Context, pattern string, rl rule, p api.Principal, r *http.Request) error {
	switch {
	case rl.access == anyone || p.Role == api.RoleAdmin:
		return nil
	case p.Role == "":
		return errs.Unauthenticated("this cluster asks for an API token: pass --token or set GODWIT_TOKEN (an admin makes one with godwit token create)")
	case rl.access == host && p.Role != api.RoleHost:
		return errs.Forbidden("%s is for host agents and admins; %s", pattern, p)
	case rl.access == host:
		return nil
	case p.Role == api.RoleHost:
		return errs.Forbidden("%s is not for host agents: a host's certificate only heartbeats, joins and fetches images", pattern)
	case rl.access == admin:
		return errs.Forbidden("%s needs the admin role; the request came with the %s", pattern, p)
	}
	return c.ownedBy(ctx, rl.scope, p, r)
}

// ownedBy checks that what r's path names belongs to p's project.
func (c *Controller) ownedBy(ctx context.Context, s scope, p api.Principal, r *http.Request) error {
	var project string
	var missing error
	switch s {
	case global, listed, bodyProject:
		return nil
	case projectPath:
		if name := r.PathValue("name"); name != p.Project {
			return errs.Forbidden("a member sees only its own project, %s, not %s; the request came with the %s", p.Project, name, p)
		}
		return nil
	case vmPath:
		vm, err := c.svc.VM(ctx, r.PathValue("name"))
		if err != nil {
			return nil // the handler answers for a VM that does not exist
		}
		project, missing = vm.Project, store.VMNotFound(vm.Name)
	case migrationPath:
		m, err := c.svc.Migration(ctx, r.PathValue("id"))
		if err != nil {
			return nil
		}
		project, missing = m.Project, errs.NotFound("migration %s not found; list migrations with: godwit migration list", m.ID)
	case serverPath:
		id := r.PathValue("server_id")
		vms, err := c.svc.VMs(ctx, store.VMFilter{ID: id})
		if err != nil || len(vms) != 1 {
			return nil
		}
		project, missing = vms[0].Project, nova.ServerNotFound(id)
	case intentPath, ownIntentPath:
		in, err := c.intents.Intent(ctx, r.PathValue("id"))
		if err != nil {
			return nil
		}
		project, missing = in.Project, errs.NotFound("intent %s not found; list intents with: godwit intent list", in.ID)
		if project == p.Project && s == ownIntentPath && in.Kind != api.IntentResize && in.Kind != api.IntentRebuild {
			return errs.Forbidden("a member cancels (or confirms, or reverts) only its resizes and rebuilds; this %s intent is an admin's; the request came with the %s", in.Kind, p)
		}
	}
	if project != p.Project {
		return missing
	}
	return nil
}

// noteTarget notes, for r's audit record, the VM its path names: a Nova
// server by its ID, or as the route's scope says, a VM by its name or a
// VM's intent (a resize, rebuild or held migration) by its ID. One that
// does not exist is not noted: the handler answers for it.
func (c *Controller) noteTarget(r *http.Request, s scope) {
	ctx := r.Context()
	switch {
	case r.PathValue("server_id") != "":
		if vms, err := c.svc.VMs(ctx, store.VMFilter{ID: r.PathValue("server_id")}); err == nil && len(vms) == 1 {
			audit.NoteVM(ctx, vms[0].ID, vms[0].Project)
		}
	case s == vmPath:
		if vm, err := c.svc.VM(ctx, r.PathValue("name")); err == nil {
			audit.NoteVM(ctx, vm.ID, vm.Project)
		}
	case s == intentPath || s == ownIntentPath:
		// A VM's intent has its project; a host's (drain, evacuate),
		// about many VMs, has none.
		if in, err := c.intents.Intent(ctx, r.PathValue("id")); err == nil && in.Project != "" {
			for _, op := range in.Operations {
				if op.VMID != "" {
					audit.NoteVM(ctx, op.VMID, in.Project)
					break
				}
			}
		}
	}
}

// scoped narrows a list to what the caller may see: everything for an
// admin, the member's project's items otherwise.
func scoped[T any](ctx context.Context, items []T, project func(T) string) []T {
	p := auth.From(ctx)
	if p.Role == api.RoleAdmin {
		return items
	}
	return slices.DeleteFunc(items, func(v T) bool { return project(v) != p.Project })
}

// ownProject puts the caller's project into a request that names one
// (empty: the caller's); a member naming another is refused.
func ownProject(ctx context.Context, project *string) error {
	p := auth.From(ctx)
	switch {
	case p.Role == api.RoleAdmin:
	case *project == "":
		*project = p.Project
	case *project != p.Project:
		return errs.Forbidden("a member acts only in its own project, %s, not %s; the request came with the %s", p.Project, *project, p)
	}
	return nil
}

// listProject is the project a list is narrowed to: what the query asks
// (an admin's may be empty: all of them), a member's own.
func listProject(ctx context.Context, asked string) (string, error) {
	err := ownProject(ctx, &asked)
	return asked, err
}

// auditWriter records a response's status and, for a failure, its
// message.
type auditWriter struct {
	http.ResponseWriter
	status int
	msg    []byte // the start of a failure's body
}

func (w *auditWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *auditWriter) Write(b []byte) (int, error) {
	if w.status >= 400 && len(w.msg) < 2048 {
		w.msg = append(w.msg, b[:min(len(b), 2048-len(w.msg))]...)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (uploads set
// read deadlines through it).
func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// audit records one mutating request.
func (c *Controller) audit(r *http.Request, p api.Principal, w *auditWriter, start time.Time, id string, note *audit.Note) {
	rec := api.AuditRecord{Time: start.UTC(), Who: p.String(), Role: p.Role, Method: r.Method, Path: r.URL.Path,
		Status: w.status, Remote: r.RemoteAddr, DurationMS: time.Since(start).Milliseconds(), RequestID: id}
	note.Fill(&rec)
	if w.status >= 400 {
		rec.Error = failure(w.msg, w.status)
	}
	c.svc.RecordAudit(r.Context(), rec)
}

// failure is the message of a failure's body: godwit's *api.Error, or
// the one-key object Nova's and Keystone's errors are
// ({"itemNotFound": {"message": …}}).
func failure(body []byte, status int) string {
	var e api.Error
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.Message
	}
	var fault map[string]struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &fault) == nil && len(fault) == 1 {
		for _, f := range fault {
			if f.Message != "" {
				return f.Message
			}
		}
	}
	return fmt.Sprintf("HTTP %d", status)
}

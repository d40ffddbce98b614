package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/controller"
)

// caller is one kind of API client in the policy test.
type caller string

const (
	noToken  caller = "no token"
	badToken caller = "bad token"
	revoked  caller = "revoked token"
	stranger caller = "member of another project"
	owner    caller = "member"
	admin    caller = "admin"
)

var callers = []caller{noToken, badToken, revoked, stranger, owner, admin}

// routeCase is how the policy test calls one route: its path (VM stands
// for a VM of the member's project, made for the call), its body, and
// the status it answers when the caller may call it.
type routeCase struct {
	// who may call it: anyone, member, admin or host (host agents and
	// admins), and for members the scope after the slash: vm, migration,
	// intent or own-intent (another project's reads as not found),
	// project (another's is forbidden), listed or body.
	who  string
	path string
	body string // "" none
	ok   int
	// admin's status when it differs from ok (a route for hosts).
	adminOK int
}

// Every route of the API × every kind of caller: the status each gets,
// and no other project's data in any body. The table must name every
// route in the policy (and no other), so a new route cannot go
// untested.
func TestPolicyEveryRoute(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 8, 4096, 4096)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	adm := tc.client
	tokens := map[caller]string{admin: tc.adminToken, badToken: "gwt_0123456789ab_" + strings.Repeat("A", 43)}
	ids := map[caller]string{} // token IDs: Keystone's user IDs
	for c, req := range map[caller]api.CreateTokenRequest{
		owner:    {Name: "alice", Project: "alpha", Role: api.RoleMember},
		stranger: {Name: "bob", Project: "beta", Role: api.RoleMember},
		revoked:  {Name: "carol", Project: "alpha", Role: api.RoleMember},
	} {
		tok, err := adm.CreateToken(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		tokens[c], ids[c] = tok.Secret, tok.ID
		if c == revoked {
			if _, err := adm.RevokeToken(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// alpha's VM, a migration of it and a resize of it.
	flavor := api.Flavor{VCPUs: 1, MemoryMiB: 64}
	fixture, err := adm.CreateVM(ctx, api.CreateVMRequest{Name: "a-vm", Project: "alpha", Image: "guest", Pool: api.PoolShared, Flavor: flavor})
	if err != nil {
		t.Fatal(err)
	}
	mig, err := adm.Migrate(ctx, "a-vm", api.MigrateRequest{Kind: api.KindLive})
	if err != nil {
		t.Fatal(err)
	}
	waitMigration(t, adm, mig.ID)
	in, err := adm.Resize(ctx, "a-vm", api.ResizeRequest{VCPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitIntent(t, adm, in.ID, 30*time.Second)
	alphaIDs := []string{fixture.ID, mig.ID, in.ID, `"a-vm"`}
	if _, err := adm.CreateFlavor(ctx, api.CreateFlavorRequest{Name: "m1.small", VCPUs: 1, MemoryMiB: 64}); err != nil {
		t.Fatal(err)
	}

	vmBody := `{"name":"NEW","image":"guest","pool":"shared","flavor":{"vcpus":1,"memory_mib":64}}`
	cases := map[string]routeCase{
		"GET /v1/version":                    {who: "anyone", path: "/v1/version", ok: 200},
		"GET /openapi.json":                  {who: "anyone", path: "/openapi.json", ok: 200},
		"GET /v1/whoami":                     {who: "member", path: "/v1/whoami", ok: 200},
		"POST /v1/join":                      {who: "anyone", path: "/v1/join", body: `{"host":"host9","secret":"x","csr":"x"}`, ok: 403},
		"POST /v1/internal/heartbeat":        {who: "host", path: "/v1/internal/heartbeat", body: `{"host":{"name":"host9"}}`, ok: 200, adminOK: 403},
		"GET /v1/hosts":                      {who: "admin", path: "/v1/hosts", ok: 200},
		"GET /v1/hosts/{name}":               {who: "admin", path: "/v1/hosts/host1", ok: 200},
		"POST /v1/hosts/{name}/enable":       {who: "admin", path: "/v1/hosts/host9/enable", ok: 404},
		"POST /v1/hosts/{name}/disable":      {who: "admin", path: "/v1/hosts/host9/disable", ok: 404},
		"POST /v1/hosts/{name}/join-token":   {who: "admin", path: "/v1/hosts/host9/join-token", ok: 200},
		"POST /v1/hosts/{name}/revoke":       {who: "admin", path: "/v1/hosts/host9/revoke", ok: 200},
		"POST /v1/hosts/{name}/drain":        {who: "admin", path: "/v1/hosts/host9/drain", body: `{"dry_run":true}`, ok: 404},
		"POST /v1/hosts/{name}/evacuate":     {who: "admin", path: "/v1/hosts/host9/evacuate", body: `{"dry_run":true}`, ok: 404},
		"GET /v1/cluster/settings":           {who: "admin", path: "/v1/cluster/settings", ok: 200},
		"PATCH /v1/cluster/settings":         {who: "admin", path: "/v1/cluster/settings", body: `{}`, ok: 200},
		"POST /v1/vms/{name}/migrate":        {who: "admin", path: "/v1/vms/VM/migrate", body: `{"kind":"live","dry_run":true}`, ok: 200},
		"POST /v1/migrations/{id}/abort":     {who: "admin", path: "/v1/migrations/" + mig.ID + "/abort", ok: 409},
		"POST /v1/migrations/{id}/complete":  {who: "admin", path: "/v1/migrations/" + mig.ID + "/complete", ok: 409},
		"POST /v1/images":                    {who: "admin", path: "/v1/images", body: `{}`, ok: 400},
		"DELETE /v1/images/{name}":           {who: "admin", path: "/v1/images/nope", ok: 404},
		"POST /v1/networks":                  {who: "admin", path: "/v1/networks", body: `{}`, ok: 400},
		"DELETE /v1/networks/{name}":         {who: "admin", path: "/v1/networks/nope", ok: 404},
		"POST /v1/tokens":                    {who: "admin", path: "/v1/tokens", body: `{"name":"NEW","project":"alpha"}`, ok: 201},
		"GET /v1/tokens":                     {who: "admin", path: "/v1/tokens", ok: 200},
		"POST /v1/tokens/{id}/revoke":        {who: "admin", path: "/v1/tokens/ffffffffffff/revoke", ok: 404},
		"GET /v1/projects":                   {who: "admin", path: "/v1/projects", ok: 200},
		"PUT /v1/projects/{name}/quota":      {who: "admin", path: "/v1/projects/alpha/quota", body: `{"vms":0}`, ok: 200},
		"GET /v1/audit":                      {who: "admin", path: "/v1/audit", ok: 200},
		"GET /metrics":                       {who: "admin", path: "/metrics", ok: 200},
		"GET /v1/images/{name}/files/{role}": {who: "host", path: "/v1/images/guest/files/kernel", ok: 200},
		"GET /v1/images":                     {who: "member", path: "/v1/images", ok: 200},
		"GET /v1/images/{name}":              {who: "member", path: "/v1/images/guest", ok: 200},
		"GET /v1/networks":                   {who: "member", path: "/v1/networks", ok: 200},
		"GET /v1/networks/{name}":            {who: "member", path: "/v1/networks/nope", ok: 404},
		"GET /v1/projects/{name}":            {who: "member/project", path: "/v1/projects/alpha", ok: 200},
		"GET /v1/vms":                        {who: "member/listed", path: "/v1/vms", ok: 200},
		"POST /v1/vms":                       {who: "member/body", path: "/v1/vms", body: vmBody, ok: 201},
		"GET /v1/vms/{name}":                 {who: "member/vm", path: "/v1/vms/VM", ok: 200},
		"PATCH /v1/vms/{name}":               {who: "member/vm", path: "/v1/vms/VM", body: `{"display_name":"Web server ✓"}`, ok: 200},
		"DELETE /v1/vms/{name}":              {who: "member/vm", path: "/v1/vms/VM", ok: 204},
		"POST /v1/vms/{name}/{action}":       {who: "member/vm", path: "/v1/vms/VM/reboot", ok: 200},
		"GET /v1/vms/{name}/console":         {who: "member/vm", path: "/v1/vms/VM/console", ok: 200},
		"POST /v1/vms/{name}/lock":           {who: "member/vm", path: "/v1/vms/VM/lock", body: `{"reason":"maintenance"}`, ok: 200},
		"POST /v1/vms/{name}/unlock":         {who: "member/vm", path: "/v1/vms/VM/unlock", ok: 200},
		"POST /v1/vms/{name}/resize":         {who: "member/vm", path: "/v1/vms/VM/resize", body: `{"vcpus":2,"dry_run":true}`, ok: 200},
		"POST /v1/vms/{name}/rebuild":        {who: "member/vm", path: "/v1/vms/VM/rebuild", body: `{"dry_run":true}`, ok: 200},
		"GET /v1/migrations":                 {who: "member/listed", path: "/v1/migrations", ok: 200},
		"GET /v1/migrations/{id}":            {who: "member/migration", path: "/v1/migrations/" + mig.ID, ok: 200},
		"GET /v1/intents":                    {who: "member/listed", path: "/v1/intents", ok: 200},
		"GET /v1/intents/{id}":               {who: "member/intent", path: "/v1/intents/" + in.ID, ok: 200},
		"POST /v1/intents/{id}/cancel":       {who: "member/own-intent", path: "/v1/intents/" + in.ID + "/cancel", ok: 409},
		// A completed resize: 409 (not awaiting confirmation) once the policy lets the caller in.
		"POST /v1/intents/{id}/confirm": {who: "member/own-intent", path: "/v1/intents/" + in.ID + "/confirm", ok: 409},
		"POST /v1/intents/{id}/revert":  {who: "member/own-intent", path: "/v1/intents/" + in.ID + "/revert", ok: 409},
		// Stored flavors.
		"GET /v1/flavors":           {who: "member", path: "/v1/flavors", ok: 200},
		"GET /v1/flavors/{name}":    {who: "member", path: "/v1/flavors/nope", ok: 404},
		"POST /v1/flavors":          {who: "admin", path: "/v1/flavors", body: `{"name":"NEW","vcpus":1,"memory_mib":64}`, ok: 201},
		"DELETE /v1/flavors/{name}": {who: "admin", path: "/v1/flavors/nope", ok: 404},
		// Key pairs: each caller's own (another's reads as missing: the
		// key pair tests).
		"GET /v1/keypairs":           {who: "member/listed", path: "/v1/keypairs", ok: 200},
		"POST /v1/keypairs":          {who: "member", path: "/v1/keypairs", body: `{"name":"NEW","public_key":"` + testKeyEd25519 + `"}`, ok: 201},
		"GET /v1/keypairs/{name}":    {who: "member", path: "/v1/keypairs/nope", ok: 404},
		"DELETE /v1/keypairs/{name}": {who: "member", path: "/v1/keypairs/nope", ok: 404},
		// follow=false: what is kept, then the end (a stream never ends).
		"GET /v1/events": {who: "member/listed", path: "/v1/events?follow=false", ok: 200},
		// The dashboard's files (the redirect to them is followed).
		"GET /{$}":          {who: "anyone", path: "/", ok: 200},
		"GET /ui/{file...}": {who: "anyone", path: "/ui/app.js", ok: 200},

		// OpenStack's APIs (VMID: the VM's ID, a Nova server's).
		"GET /identity/{$}":                                                       {who: "anyone", path: "/identity/", ok: 300},
		"GET /identity":                                                           {who: "anyone", path: "/identity", ok: 300},
		"GET /identity/v3/{$}":                                                    {who: "anyone", path: "/identity/v3/", ok: 200},
		"GET /identity/v3":                                                        {who: "anyone", path: "/identity/v3", ok: 200},
		"POST /identity/v3/auth/tokens":                                           {who: "anyone", path: "/identity/v3/auth/tokens", body: `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"x","password":"gwt_0123456789ab_` + strings.Repeat("B", 43) + `"}}}}}`, ok: 401},
		"GET /identity/v3/auth/tokens":                                            {who: "member", path: "/identity/v3/auth/tokens", ok: 404}, // no X-Subject-Token
		"GET /compute/{$}":                                                        {who: "anyone", path: "/compute/", ok: 200},
		"GET /compute":                                                            {who: "anyone", path: "/compute", ok: 200},
		"GET /compute/v2.1/{$}":                                                   {who: "anyone", path: "/compute/v2.1/", ok: 200},
		"GET /compute/v2.1":                                                       {who: "anyone", path: "/compute/v2.1", ok: 200},
		"GET /compute/v2.1/servers":                                               {who: "member/listed", path: "/compute/v2.1/servers", ok: 200},
		"GET /compute/v2.1/servers/detail":                                        {who: "member/listed", path: "/compute/v2.1/servers/detail", ok: 200},
		"POST /compute/v2.1/servers":                                              {who: "member", path: "/compute/v2.1/servers", body: `{"server":{"name":"NEW","imageRef":"guest","flavorRef":"m1.small"}}`, ok: 202},
		"GET /compute/v2.1/servers/{server_id}":                                   {who: "member/server", path: "/compute/v2.1/servers/VMID", ok: 200},
		"PUT /compute/v2.1/servers/{server_id}":                                   {who: "member/server", path: "/compute/v2.1/servers/VMID", body: `{"server":{"name":"renamed"}}`, ok: 200},
		"DELETE /compute/v2.1/servers/{server_id}":                                {who: "member/server", path: "/compute/v2.1/servers/VMID", ok: 204},
		"POST /compute/v2.1/servers/{server_id}/action":                           {who: "member/server", path: "/compute/v2.1/servers/VMID/action", body: `{"os-stop":null}`, ok: 202},
		"GET /compute/v2.1/limits":                                                {who: "member", path: "/compute/v2.1/limits", ok: 200},
		"GET /compute/v2.1/os-availability-zone":                                  {who: "member", path: "/compute/v2.1/os-availability-zone", ok: 200},
		"GET /compute/v2.1/os-availability-zone/detail":                           {who: "member", path: "/compute/v2.1/os-availability-zone/detail", ok: 200},
		"GET /compute/v2.1/flavors":                                               {who: "member", path: "/compute/v2.1/flavors", ok: 200},
		"GET /compute/v2.1/flavors/detail":                                        {who: "member", path: "/compute/v2.1/flavors/detail", ok: 200},
		"GET /compute/v2.1/flavors/{flavor_id}":                                   {who: "member", path: "/compute/v2.1/flavors/m1.small", ok: 200},
		"GET /compute/v2.1/flavors/{flavor_id}/os-extra_specs":                    {who: "member", path: "/compute/v2.1/flavors/m1.small/os-extra_specs", ok: 200},
		"POST /compute/v2.1/flavors":                                              {who: "admin", path: "/compute/v2.1/flavors", body: `{"flavor":{"name":"NEW","vcpus":1,"ram":64,"disk":0}}`, ok: 200},
		"DELETE /compute/v2.1/flavors/{flavor_id}":                                {who: "admin", path: "/compute/v2.1/flavors/nope", ok: 404},
		"GET /compute/v2.1/os-keypairs":                                           {who: "member/listed", path: "/compute/v2.1/os-keypairs", ok: 200},
		"POST /compute/v2.1/os-keypairs":                                          {who: "member", path: "/compute/v2.1/os-keypairs", body: `{"keypair":{"name":"NEW","public_key":"` + testKeyEd25519 + `"}}`, ok: 200},
		"GET /compute/v2.1/os-keypairs/{keypair_name}":                            {who: "member", path: "/compute/v2.1/os-keypairs/nope", ok: 404},
		"DELETE /compute/v2.1/os-keypairs/{keypair_name}":                         {who: "member", path: "/compute/v2.1/os-keypairs/nope", ok: 404},
		"GET /compute/v2.1/os-migrations":                                         {who: "admin", path: "/compute/v2.1/os-migrations", ok: 200},
		"GET /compute/v2.1/servers/{server_id}/migrations":                        {who: "admin", path: "/compute/v2.1/servers/VMID/migrations", ok: 404}, // from 2.23
		"GET /compute/v2.1/servers/{server_id}/migrations/{migration_id}":         {who: "admin", path: "/compute/v2.1/servers/VMID/migrations/1", ok: 404},
		"POST /compute/v2.1/servers/{server_id}/migrations/{migration_id}/action": {who: "admin", path: "/compute/v2.1/servers/VMID/migrations/1/action", body: `{"force_complete":null}`, ok: 400}, // from 2.22
		"DELETE /compute/v2.1/servers/{server_id}/migrations/{migration_id}":      {who: "admin", path: "/compute/v2.1/servers/VMID/migrations/1", ok: 404},
		"GET /compute/v2.1/servers/{server_id}/os-instance-actions":               {who: "member/server", path: "/compute/v2.1/servers/VMID/os-instance-actions", ok: 200},
		"GET /compute/v2.1/servers/{server_id}/os-instance-actions/{request_id}":  {who: "member/server", path: "/compute/v2.1/servers/VMID/os-instance-actions/req-nope", ok: 404}, // no such request
		"GET /compute/v2.1/os-hypervisors":                                        {who: "admin", path: "/compute/v2.1/os-hypervisors", ok: 200},
		"GET /compute/v2.1/os-hypervisors/detail":                                 {who: "admin", path: "/compute/v2.1/os-hypervisors/detail", ok: 200},
		"GET /compute/v2.1/os-hypervisors/statistics":                             {who: "admin", path: "/compute/v2.1/os-hypervisors/statistics", ok: 200},
		"GET /compute/v2.1/os-hypervisors/{hypervisor_id}":                        {who: "admin", path: "/compute/v2.1/os-hypervisors/host1", ok: 200},
		"GET /compute/v2.1/os-hypervisors/{hypervisor_id}/uptime":                 {who: "admin", path: "/compute/v2.1/os-hypervisors/host1/uptime", ok: 200},
		"GET /compute/v2.1/os-hypervisors/{hypervisor_id}/servers":                {who: "admin", path: "/compute/v2.1/os-hypervisors/host/servers", ok: 200},
		"GET /compute/v2.1/os-hypervisors/{hypervisor_id}/search":                 {who: "admin", path: "/compute/v2.1/os-hypervisors/host/search", ok: 200},
		"GET /compute/v2.1/os-aggregates":                                         {who: "admin", path: "/compute/v2.1/os-aggregates", ok: 200},
		"GET /compute/v2.1/os-services":                                           {who: "admin", path: "/compute/v2.1/os-services", ok: 200},
		"PUT /compute/v2.1/os-services/{action}":                                  {who: "admin", path: "/compute/v2.1/os-services/disable", body: `{"host":"host9","binary":"nova-compute"}`, ok: 404},
		"GET /compute/v2.1/os-quota-sets/{tenant_id}":                             {who: "member/project", path: "/compute/v2.1/os-quota-sets/alpha", ok: 200},
		"GET /compute/v2.1/os-quota-sets/{tenant_id}/detail":                      {who: "member/project", path: "/compute/v2.1/os-quota-sets/alpha/detail", ok: 200},
		"GET /compute/v2.1/os-quota-sets/{tenant_id}/defaults":                    {who: "member", path: "/compute/v2.1/os-quota-sets/alpha/defaults", ok: 200},
		"PUT /compute/v2.1/os-quota-sets/{tenant_id}":                             {who: "admin", path: "/compute/v2.1/os-quota-sets/alpha", body: `{"quota_set":{"instances":-1}}`, ok: 200},
		"DELETE /compute/v2.1/os-quota-sets/{tenant_id}":                          {who: "admin", path: "/compute/v2.1/os-quota-sets/alpha", ok: 202},
		"GET /image/{$}":                                                          {who: "anyone", path: "/image/", ok: 300},
		"GET /image":                                                              {who: "anyone", path: "/image", ok: 300},
		"GET /image/v2/images":                                                    {who: "member", path: "/image/v2/images", ok: 200},
		"GET /image/v2/images/{image_id}":                                         {who: "member", path: "/image/v2/images/guest", ok: 200},

		// Keystone's listings (a member reads its own user and project only:
		// "project" scope, another's is forbidden) and its refused writes.
		"GET /identity/v3/users":                                                    {who: "admin", path: "/identity/v3/users", ok: 200},
		"GET /identity/v3/users/{user_id}":                                          {who: "member/project", path: "/identity/v3/users/ALICE", ok: 200},
		"GET /identity/v3/users/{user_id}/projects":                                 {who: "member/project", path: "/identity/v3/users/ALICE/projects", ok: 200},
		"GET /identity/v3/projects":                                                 {who: "admin", path: "/identity/v3/projects", ok: 200},
		"GET /identity/v3/projects/{project_id}":                                    {who: "member/project", path: "/identity/v3/projects/alpha", ok: 200},
		"GET /identity/v3/auth/projects":                                            {who: "member", path: "/identity/v3/auth/projects", ok: 200},
		"GET /identity/v3/roles":                                                    {who: "member", path: "/identity/v3/roles", ok: 200},
		"GET /identity/v3/roles/{role_id}":                                          {who: "member", path: "/identity/v3/roles/reader", ok: 200},
		"GET /identity/v3/role_assignments":                                         {who: "admin", path: "/identity/v3/role_assignments", ok: 200},
		"GET /identity/v3/domains":                                                  {who: "member", path: "/identity/v3/domains", ok: 200},
		"GET /identity/v3/domains/{domain_id}":                                      {who: "member", path: "/identity/v3/domains/default", ok: 200},
		"GET /identity/v3/auth/domains":                                             {who: "member", path: "/identity/v3/auth/domains", ok: 200},
		"POST /identity/v3/users":                                                   {who: "admin", path: "/identity/v3/users", body: `{"user":{"name":"NEW"}}`, ok: 403},
		"PATCH /identity/v3/users/{user_id}":                                        {who: "admin", path: "/identity/v3/users/ALICE", body: `{"user":{"enabled":false}}`, ok: 403},
		"DELETE /identity/v3/users/{user_id}":                                       {who: "admin", path: "/identity/v3/users/ALICE", ok: 403},
		"POST /identity/v3/users/{user_id}/password":                                {who: "member", path: "/identity/v3/users/ALICE/password", body: `{"user":{"password":"x","original_password":"y"}}`, ok: 403},
		"POST /identity/v3/projects":                                                {who: "admin", path: "/identity/v3/projects", body: `{"project":{"name":"NEW"}}`, ok: 403},
		"PATCH /identity/v3/projects/{project_id}":                                  {who: "admin", path: "/identity/v3/projects/alpha", body: `{"project":{"enabled":false}}`, ok: 403},
		"DELETE /identity/v3/projects/{project_id}":                                 {who: "admin", path: "/identity/v3/projects/alpha", ok: 403},
		"PUT /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}":    {who: "admin", path: "/identity/v3/projects/alpha/users/ALICE/roles/admin", ok: 403},
		"DELETE /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}": {who: "admin", path: "/identity/v3/projects/alpha/users/ALICE/roles/member", ok: 403},
	}
	routes := controller.PolicyRoutes()
	for pattern, rc := range cases {
		rc.path = strings.ReplaceAll(rc.path, "ALICE", ids[owner]) // the member's user ID
		cases[pattern] = rc
		if !slices.Contains(routes, pattern) {
			t.Errorf("the test calls %s, which is not in the policy", pattern)
		}
	}
	for _, pattern := range routes {
		if _, ok := cases[pattern]; !ok {
			t.Errorf("route %s is not in the test's table", pattern)
		}
	}

	call := func(c caller, method, path, body string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, tc.url+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if api.IsWrite(method) {
			req.Header.Set("Content-Type", "application/json")
		}
		if tokens[c] != "" {
			req.Header.Set("Authorization", "Bearer "+tokens[c])
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := adm.HTTP.Do(req.WithContext(cctx))
		if err != nil {
			t.Fatalf("%s %s as %s: %v", method, path, c, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	n := 0
	for _, pattern := range routes {
		rc := cases[pattern]
		method, _, _ := strings.Cut(pattern, " ")
		for _, c := range callers {
			n++
			path, body := rc.path, strings.ReplaceAll(rc.body, "NEW", fmt.Sprintf("new-%d", n))
			var vm api.VM
			if strings.Contains(path, "VM") {
				// A VM of alpha's, made for this call (the call may delete it).
				if vm, err = adm.CreateVM(ctx, api.CreateVMRequest{Name: fmt.Sprintf("t-%d", n), Project: "alpha", Image: "guest", Pool: api.PoolShared, Flavor: flavor}); err != nil {
					t.Fatal(err)
				}
				alphaIDs = append(alphaIDs, vm.ID)
				path = strings.Replace(strings.Replace(path, "VMID", vm.ID, 1), "VM", vm.Name, 1)
			}
			want := expected(rc, c)
			got, reply := call(c, method, path, body)
			if got != want {
				t.Errorf("%s as %s: HTTP %d, want %d: %s", pattern, c, got, want, reply)
			}
			if c == stranger && got == http.StatusNotFound {
				// The same answer as for an object that does not exist.
				pairs := []string{mig.ID, "00000000-0000-4000-8000-000000000000", in.ID, "00000000-0000-4000-8000-000000000000"}
				if vm.Name != "" {
					pairs = append(pairs, vm.Name, "no-such-vm", vm.ID, "00000000-0000-4000-8000-000000000000")
				}
				ghost := strings.NewReplacer(pairs...)
				_, none := call(admin, method, ghost.Replace(path), body)
				if ghost.Replace(reply) != none {
					t.Errorf("%s as %s: %s; another project's object must read as one that does not exist: %s", pattern, c, reply, none)
				}
			} else if c == stranger || c == noToken || c == badToken || c == revoked {
				for _, id := range alphaIDs {
					if strings.Contains(reply, id) {
						t.Errorf("%s as %s: the reply shows project alpha's %s: %s", pattern, c, id, reply)
					}
				}
			}
			if vm.Name != "" {
				_ = adm.DeleteVM(ctx, vm.Name)
			}
			if strings.HasPrefix(pattern, "POST /v1/vms") && got == http.StatusCreated {
				_ = adm.DeleteVM(ctx, fmt.Sprintf("new-%d", n))
			}
		}
	}
	t.Logf("%d routes × %d callers", len(routes), len(callers))
}

// expected is the status a caller gets on a route, from who may call it.
func expected(rc routeCase, c caller) int {
	access, scope, _ := strings.Cut(rc.who, "/")
	ok := rc.ok
	switch c {
	case noToken:
		if access == "anyone" {
			return ok
		}
		return http.StatusUnauthorized
	case badToken, revoked:
		return http.StatusUnauthorized
	case admin:
		if rc.adminOK != 0 {
			return rc.adminOK
		}
		return ok
	}
	switch {
	case access == "admin" || access == "host":
		return http.StatusForbidden
	case access == "anyone":
		return ok
	case c == owner:
		return ok
	}
	switch scope { // the stranger
	case "vm", "server", "migration", "intent", "own-intent":
		return http.StatusNotFound
	case "project":
		return http.StatusForbidden
	}
	return ok
}

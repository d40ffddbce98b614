package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// Route is one route of the controller's REST API: its pattern, what it
// takes and what it answers, as Go types. Routes lists them all; the
// OpenAPI document (GET /openapi.json, docs/openapi.json) is generated
// from it, and tests hold it to the controller's routes and to the
// Client's methods, so none of the three can drift from the others.
type Route struct {
	Method string // GET, POST, PUT, PATCH or DELETE
	// Path is the path with its parameters in braces, as
	// http.ServeMux patterns and OpenAPI paths write them.
	Path string
	// ID names the operation in OpenAPI (operationId): unique, lower
	// camel case.
	ID      string
	Summary string
	// Internal routes are for agents (heartbeats, joining, image files),
	// with bodies of the agents' wire format: they are left out of the
	// OpenAPI document and need no Client method.
	Internal bool
	// Params describes path and query parameters. A path parameter not
	// listed is a plain string.
	Params []Param
	// Request is the body's type, as a zero value; nil: no body.
	Request *Body
	// Responses are the success replies, by status; the document adds
	// the Error body of every failure.
	Responses []Response
}

// Pattern is the route as http.ServeMux and the controller's policy
// table write it: "METHOD /path/{param}".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Param is a path or query parameter.
type Param struct {
	Name string
	In   string // "path" or "query"
	// Type is the parameter's type as a zero value: "", 0, false,
	// time.Time{}, or a typed word of the vocabulary.
	Type        any
	Enum        []string // its values, when they are a closed set
	Description string
}

// Body is a request's or response's body.
type Body struct {
	// Type is the body's Go type as a zero value (Host{}, []Host(nil));
	// nil for a body that is not JSON.
	Type any
	// Media is its media type; "" is application/json.
	Media string
	// Optional says an empty request body stands for the zero value.
	Optional bool
	// Parts are the parts of a multipart/form-data body, in order: a
	// JSON part's Type, or nil for a file.
	Parts []Part
}

// Part is one part of a multipart request body.
type Part struct {
	Name        string
	Type        any // the JSON part's type; nil: a file's bytes
	Description string
}

// Response is one success reply of a route.
type Response struct {
	Status      int
	Description string
	Body        *Body // nil: no body
}

// Media types of the bodies that are not JSON.
const (
	MediaJSON      = "application/json"
	MediaText      = "text/plain"
	MediaEvents    = "text/event-stream"
	MediaMultipart = "multipart/form-data"
	MediaBinary    = "application/octet-stream"
)

// OpenAPIPath is where the controller serves its OpenAPI document.
const OpenAPIPath = "/openapi.json"

// MetricsPath is where the controller (and an agent's --metrics-listen)
// serves Prometheus metrics.
const MetricsPath = "/metrics"

// VMActions are the actions of POST /v1/vms/{name}/{action}.
var VMActions = []string{"start", "stop", "reboot"}

// Enumerations lists, for each typed word of the vocabulary whose values
// are a closed set, the slice of its values: the OpenAPI document gives
// them as the type's enum. A test in this package checks that every
// constant of each type is in its list.
func Enumerations() []any {
	return []any{MigrationKinds, MigrationStates, Policies, Techniques, IntentKinds, IntentStates,
		OperationKinds, OperationStates, FailurePolicies, Roles, NetworkTypes}
}

// The closed sets of the typed vocabulary (Enumerations).
var (
	MigrationKinds  = []MigrationKind{KindLive, KindCold}
	MigrationStates = []MigrationState{MigQueued, MigScheduling, MigPreparing, MigWaitingLink, MigTransferring,
		MigSwitchingOver, MigFinishing, MigCompleted, MigRolledBack, MigCancelled, MigNeedsAttention}
	IntentKinds  = []IntentKind{IntentMigrate, IntentDrain, IntentEvacuate, IntentResize, IntentRebuild}
	IntentStates = []IntentState{IntentPlanned, IntentRunning, IntentCancelling, IntentCompleted, IntentPartial,
		IntentFailed, IntentCancelled, IntentAwaitingConfirm, IntentReverting, IntentReverted}
	OperationKinds  = []OperationKind{OpLive, OpCold, OpResize, OpRebuild, OpStop, OpNone}
	OperationStates = []OperationState{OpPlanned, OpPending, OpRunning, OpDone, OpSkipped, OpFailed, OpCancelled}
	Roles           = []Role{RoleMember, RoleAdmin, RoleHost}
	NetworkTypes    = []NetworkType{NetworkBridge}
)

// Shorthands for the table below.
func jsonBody(v any) *Body     { return &Body{Type: v} }
func optionalBody(v any) *Body { return &Body{Type: v, Optional: true} }
func okReply(v any) []Response { return []Response{{Status: http.StatusOK, Body: jsonBody(v)}} }
func createdReply(v any) Response {
	return Response{Status: http.StatusCreated, Body: jsonBody(v)}
}

var (
	noContent = []Response{{Status: http.StatusNoContent, Description: "done; no body"}}
	// planOrRun is the reply of the intent kinds: the plan with
	// dry_run, else the intent, which runs on in the controller.
	planOrRun = []Response{
		{Status: http.StatusOK, Description: "with dry_run: the plan, an intent in state planned; nothing changed", Body: jsonBody(Intent{})},
		{Status: http.StatusAccepted, Description: "the intent, running on in the controller", Body: jsonBody(Intent{})},
	}
	nameParam = Param{Name: "name", In: "path", Type: ""}
	// ownerParam names whose key pairs: a token's ID (an admin's
	// choice; a member may name only itself).
	ownerParam = Param{Name: "owner", In: "query", Type: "", Description: "the owning token's ID: an admin's choice (default: the caller's own; for a list, every token's); a member may name only itself"}
)

// Routes are the controller's routes, every one of them.
var Routes = []Route{
	{Method: "GET", Path: OpenAPIPath, ID: "openAPI", Summary: "This document: the REST API in OpenAPI 3",
		Responses: okReply(map[string]any(nil))},
	{Method: "GET", Path: MetricsPath, ID: "metrics", Summary: "Prometheus metrics, in the text exposition format (docs/metrics.md)",
		Responses: []Response{{Status: http.StatusOK, Description: "the metrics", Body: &Body{Media: MediaText}}}},
	{Method: "GET", Path: "/v1/version", ID: "version", Summary: "The controller's version and store", Responses: okReply(Version{})},
	{Method: "GET", Path: "/v1/whoami", ID: "whoami", Summary: "Who the request's token says the caller is", Responses: okReply(Principal{})},

	{Method: "GET", Path: "/v1/hosts", ID: "listHosts", Summary: "List hosts", Responses: okReply([]Host(nil))},
	{Method: "GET", Path: "/v1/hosts/{name}", ID: "getHost", Summary: "Show a host", Responses: okReply(Host{})},
	{Method: "POST", Path: "/v1/hosts/{name}/enable", ID: "enableHost", Summary: "Return a host to scheduling", Responses: okReply(Host{})},
	{Method: "POST", Path: "/v1/hosts/{name}/disable", ID: "disableHost", Summary: "Take a host out of scheduling, moving nothing", Responses: okReply(Host{})},
	{Method: "POST", Path: "/v1/hosts/{name}/join-token", ID: "createJoinToken", Summary: "Make a one-time token with which a host joins a cluster with a CA",
		Request: optionalBody(JoinTokenRequest{}), Responses: okReply(JoinToken{})},
	{Method: "POST", Path: "/v1/hosts/{name}/revoke", ID: "revokeHost", Summary: "Revoke every certificate of a host", Responses: okReply(Revocation{})},
	{Method: "POST", Path: "/v1/hosts/{name}/drain", ID: "drainHost", Summary: "Move every VM off a host (or plan it, with dry_run)",
		Request: optionalBody(DrainRequest{}), Responses: planOrRun},
	{Method: "POST", Path: "/v1/hosts/{name}/evacuate", ID: "evacuateHost", Summary: "Rebuild every VM of a down host elsewhere (or plan it, with dry_run)",
		Request: optionalBody(EvacuateRequest{}), Responses: planOrRun},
	{Method: "POST", Path: "/v1/internal/heartbeat", ID: "heartbeat", Summary: "An agent's heartbeat", Internal: true},
	{Method: "POST", Path: "/v1/join", ID: "join", Summary: "A host trades its join token for a certificate", Internal: true},

	{Method: "GET", Path: "/v1/vms", ID: "listVMs", Summary: "List VMs", Params: []Param{
		{Name: "host", In: "query", Type: "", Description: "only the VMs on this host"},
		{Name: "project", In: "query", Type: "", Description: "only this project's VMs; a member's list is its own project's, and naming another is refused"},
	}, Responses: okReply([]VM(nil))},
	{Method: "POST", Path: "/v1/vms", ID: "createVM", Summary: "Create a VM (and start it, unless start is false)",
		Request: jsonBody(CreateVMRequest{}), Responses: []Response{createdReply(VM{})}},
	{Method: "GET", Path: "/v1/vms/{name}", ID: "getVM", Summary: "Show a VM", Responses: okReply(VM{})},
	{Method: "PATCH", Path: "/v1/vms/{name}", ID: "updateVM", Summary: "Change a VM's display name, description or access addresses (the fields in the body)",
		Request: jsonBody(UpdateVMRequest{}), Responses: okReply(VM{})},
	{Method: "DELETE", Path: "/v1/vms/{name}", ID: "deleteVM", Summary: "Stop a VM and remove it with its disks", Responses: noContent},
	{Method: "POST", Path: "/v1/vms/{name}/{action}", ID: "vmAction", Summary: "Start, stop or reboot a VM",
		Params:  []Param{nameParam, {Name: "action", In: "path", Type: "", Enum: VMActions}},
		Request: optionalBody(VMActionRequest{}), Responses: okReply(VM{})},
	{Method: "POST", Path: "/v1/vms/{name}/lock", ID: "lockVM", Summary: "Lock a VM: a member's changes to it are refused until it is unlocked (locking a locked VM changes nothing)",
		Request: optionalBody(LockVMRequest{}), Responses: okReply(VM{})},
	{Method: "POST", Path: "/v1/vms/{name}/unlock", ID: "unlockVM", Summary: "Unlock a VM (a lock an admin made, only an admin)", Responses: okReply(VM{})},
	{Method: "GET", Path: "/v1/vms/{name}/console", ID: "vmConsole", Summary: "A VM's serial console log, followed with follow=true",
		Params: []Param{nameParam,
			{Name: "offset", In: "query", Type: int64(0), Description: "the byte of the log to start at"},
			{Name: "follow", In: "query", Type: false, Description: "keep the stream open and send new output as it comes"},
		}, Responses: []Response{{Status: http.StatusOK, Description: "the log, streamed", Body: &Body{Media: MediaText}}}},
	{Method: "POST", Path: "/v1/vms/{name}/migrate", ID: "migrateVM", Summary: "Move a VM to another host (or plan it, with dry_run)",
		Request: jsonBody(MigrateRequest{}), Responses: []Response{
			{Status: http.StatusOK, Description: "with dry_run: the plan, an intent in state planned; nothing changed", Body: jsonBody(Intent{})},
			{Status: http.StatusAccepted, Description: "the migration, running on in the controller (with hold: of the intent its intent field names, which then awaits confirmation)", Body: jsonBody(Migration{})},
		}},
	{Method: "POST", Path: "/v1/vms/{name}/resize", ID: "resizeVM", Summary: "Change a VM's vCPUs, memory or disk (or plan it, with dry_run)",
		Request: jsonBody(ResizeRequest{}), Responses: planOrRun},
	{Method: "POST", Path: "/v1/vms/{name}/rebuild", ID: "rebuildVM", Summary: "Reimage a VM in place (or plan it, with dry_run)",
		Request: optionalBody(RebuildRequest{}), Responses: planOrRun},

	{Method: "GET", Path: "/v1/images", ID: "listImages", Summary: "List images", Responses: okReply([]Image(nil))},
	{Method: "POST", Path: "/v1/images", ID: "importImage", Summary: "Import an image: its meta, then its files, streamed",
		Request: &Body{Media: MediaMultipart, Parts: []Part{
			{Name: "meta", Type: ImportImageMeta{}, Description: "first: the image's name and command line"},
			{Name: RoleKernel, Description: "a kernel, for direct boot"},
			{Name: RoleInitrd, Description: "its initrd"},
			{Name: RoleDisk, Description: "a qcow2 or raw root disk"},
		}}, Responses: []Response{createdReply(Image{})}},
	{Method: "GET", Path: "/v1/images/{name}", ID: "getImage", Summary: "Show an image", Responses: okReply(Image{})},
	{Method: "DELETE", Path: "/v1/images/{name}", ID: "deleteImage", Summary: "Remove an image no VM uses", Responses: noContent},
	{Method: "GET", Path: "/v1/images/{name}/files/{role}", ID: "getImageFile", Summary: "An image's file, for an agent", Internal: true},

	{Method: "GET", Path: "/v1/networks", ID: "listNetworks", Summary: "List networks", Responses: okReply([]Network(nil))},
	{Method: "POST", Path: "/v1/networks", ID: "createNetwork", Summary: "Create a network",
		Request: jsonBody(CreateNetworkRequest{}), Responses: []Response{createdReply(Network{})}},
	{Method: "GET", Path: "/v1/networks/{name}", ID: "getNetwork", Summary: "Show a network", Responses: okReply(Network{})},
	{Method: "DELETE", Path: "/v1/networks/{name}", ID: "deleteNetwork", Summary: "Remove a network no VM uses", Responses: noContent},

	{Method: "GET", Path: "/v1/flavors", ID: "listFlavors", Summary: "List stored flavors, by name", Responses: okReply([]NamedFlavor(nil))},
	{Method: "POST", Path: "/v1/flavors", ID: "createFlavor", Summary: "Store a flavor: a named VM size",
		Request: jsonBody(CreateFlavorRequest{}), Responses: []Response{createdReply(NamedFlavor{})}},
	{Method: "GET", Path: "/v1/flavors/{name}", ID: "getFlavor", Summary: "Show a flavor, by name or ID",
		Params: []Param{{Name: "name", In: "path", Type: "", Description: "the flavor's name or ID"}}, Responses: okReply(NamedFlavor{})},
	{Method: "DELETE", Path: "/v1/flavors/{name}", ID: "deleteFlavor", Summary: "Remove a flavor, by name or ID; VMs made from it keep their sizes",
		Params: []Param{{Name: "name", In: "path", Type: "", Description: "the flavor's name or ID"}}, Responses: noContent},

	{Method: "GET", Path: "/v1/keypairs", ID: "listKeyPairs", Summary: "List key pairs, by owner and name: a member's own, an admin's every token's",
		Params: []Param{ownerParam}, Responses: okReply([]KeyPair(nil))},
	{Method: "POST", Path: "/v1/keypairs", ID: "createKeyPair", Summary: "Import an SSH public key as a key pair, or generate one (its private key in this reply only)",
		Request: jsonBody(CreateKeyPairRequest{}), Responses: []Response{createdReply(CreatedKeyPair{})}},
	{Method: "GET", Path: "/v1/keypairs/{name}", ID: "getKeyPair", Summary: "Show one of the caller's key pairs (an admin's: owner's)",
		Params: []Param{nameParam, ownerParam}, Responses: okReply(KeyPair{})},
	{Method: "DELETE", Path: "/v1/keypairs/{name}", ID: "deleteKeyPair", Summary: "Remove one of the caller's key pairs (an admin's: owner's); VMs made with it keep its key",
		Params: []Param{nameParam, ownerParam}, Responses: noContent},

	{Method: "GET", Path: "/v1/migrations", ID: "listMigrations", Summary: "List migrations, newest first", Params: []Param{
		{Name: "vm", In: "query", Type: "", Description: "only this VM's"},
		{Name: "active", In: "query", Type: false, Description: "only those not yet ended"},
	}, Responses: okReply([]Migration(nil))},
	{Method: "GET", Path: "/v1/migrations/{id}", ID: "getMigration", Summary: "Show a migration", Responses: okReply(Migration{})},
	{Method: "POST", Path: "/v1/migrations/{id}/abort", ID: "abortMigration", Summary: "Cancel a running migration; it rolls back",
		Responses: []Response{{Status: http.StatusAccepted, Description: "the migration, rolling back", Body: jsonBody(Migration{})}}},
	{Method: "POST", Path: "/v1/migrations/{id}/complete", ID: "completeMigration", Summary: "Force a running live migration to finish",
		Responses: []Response{{Status: http.StatusAccepted, Description: "the migration, finishing", Body: jsonBody(Migration{})}}},

	{Method: "GET", Path: "/v1/cluster/settings", ID: "getClusterSettings", Summary: "The cluster's settings and the built-in defaults",
		Responses: okReply(ClusterSettingsReply{})},
	{Method: "PATCH", Path: "/v1/cluster/settings", ID: "updateClusterSettings", Summary: "Change the settings named in the body",
		Request: jsonBody(ClusterSettingsUpdate{}), Responses: okReply(ClusterSettingsReply{})},

	{Method: "GET", Path: "/v1/intents", ID: "listIntents", Summary: "List intents, newest first", Params: []Param{
		{Name: "target", In: "query", Type: "", Description: "only those about this host or VM"},
		{Name: "active", In: "query", Type: false, Description: "only those not yet ended"},
	}, Responses: okReply([]Intent(nil))},
	{Method: "GET", Path: "/v1/events", ID: "events",
		Summary: "Server-sent events: every change of a VM, migration or intent, with the whole object; resume after the Last-Event-ID header (or ?since=ID); ?follow=false sends what is kept and ends",
		Params: []Param{
			{Name: "kind", In: "query", Type: "", Description: "comma-separated kinds to receive: vm, migration, intent (default all)"},
			{Name: "name", In: "query", Type: "", Description: "comma-separated VM names, migration or intent IDs to receive (default all)"},
		}, Responses: []Response{{Status: http.StatusOK, Description: "the stream: id, event (vm, migration, intent or reset) and data (an Event) per message", Body: &Body{Media: MediaEvents}}}},
	{Method: "GET", Path: "/v1/intents/{id}", ID: "getIntent", Summary: "Show an intent with its operations", Responses: okReply(Intent{})},
	{Method: "POST", Path: "/v1/intents/{id}/cancel", ID: "cancelIntent", Summary: "Start no new operations of an intent",
		Request:   optionalBody(CancelIntentRequest{}),
		Responses: []Response{{Status: http.StatusAccepted, Description: "the intent, cancelling", Body: jsonBody(Intent{})}}},
	{Method: "POST", Path: "/v1/intents/{id}/confirm", ID: "confirmResize", Summary: "Keep a held resize's new size, or a held cold migration's new host: awaiting-confirmation to completed",
		Responses: []Response{{Status: http.StatusAccepted, Description: "the intent, completed", Body: jsonBody(Intent{})}}},
	{Method: "POST", Path: "/v1/intents/{id}/revert", ID: "revertResize", Summary: "Take a held resize back (the old sizes and, if it moved the VM, its old host; refused when it grew the disk), or a held cold migration (a cold move back to its old host)",
		Responses: []Response{{Status: http.StatusAccepted, Description: "the intent, reverting", Body: jsonBody(Intent{})}}},

	{Method: "POST", Path: "/v1/tokens", ID: "createToken", Summary: "Make an API token; its secret is in this reply only",
		Request: jsonBody(CreateTokenRequest{}), Responses: []Response{createdReply(CreatedToken{})}},
	{Method: "GET", Path: "/v1/tokens", ID: "listTokens", Summary: "List tokens, revoked ones too", Responses: okReply([]Token(nil))},
	{Method: "POST", Path: "/v1/tokens/{id}/revoke", ID: "revokeToken", Summary: "Revoke a token", Responses: okReply(Token{})},
	{Method: "GET", Path: "/v1/projects", ID: "listProjects", Summary: "List projects: those with a quota or with VMs", Responses: okReply([]Project(nil))},
	{Method: "GET", Path: "/v1/projects/{name}", ID: "getProject", Summary: "A project's quota and usage", Responses: okReply(Project{})},
	{Method: "PUT", Path: "/v1/projects/{name}/quota", ID: "setQuota", Summary: "Set a project's quota (0: no limit)",
		Request: jsonBody(Quota{}), Responses: okReply(Project{})},
	{Method: "GET", Path: "/v1/audit", ID: "listAudit", Summary: "The audit log of mutating requests, newest first", Params: []Param{
		{Name: "since", In: "query", Type: time.Time{}, Description: "only records at or after this time (RFC 3339)"},
		{Name: "limit", In: "query", Type: 0, Description: "at most this many (default 100)"},
		{Name: "vm_id", In: "query", Type: "", Description: "only the requests that acted on the VM of this ID"},
	}, Responses: okReply([]AuditRecord(nil))},
}

// OpenAPI returns the controller's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	err := c.Do(ctx, http.MethodGet, OpenAPIPath, nil, &doc)
	return doc, err
}

// Metrics returns the controller's Prometheus metrics, as text (an
// admin's; Prometheus itself scrapes with the token as a bearer token).
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+MetricsPath, nil)
	if err != nil {
		return nil, err
	}
	body, err := c.stream(req)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(io.LimitReader(body, 64<<20))
}

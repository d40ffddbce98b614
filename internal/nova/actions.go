package nova

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/audit"
	"github.com/godwit/godwit/internal/errs"
)

// Instance actions (os-instance-actions) are what was done to a server,
// read from godwit's audit log; nothing else records them. Every request
// that changes something is audited with the ID its reply carried, the
// VM it acted on and its project (api.AuditRecord), so a server's
// actions are its VM's records of the requests Nova records as actions —
// made through godwit's own API or Nova's — under Nova's names (create,
// stop, live-migration, …; recorded). As in Nova, a request refused
// (4xx) did nothing and is no action; one that failed inside (5xx) is
// one, with the message "Error". Each action has one event: the request
// itself, from when it came to when it was answered. Work that runs on
// after the answer (a migration, a resize) is its own record's:
// os-migrations and godwit intent list.

// maxActions bounds the audit records read for a server's actions: its
// newest requests (Nova's osapi_max_limit is as many).
const maxActions = 1000

// actionNames are Nova's instance action names of the server actions it
// records (mapping.go); os-resetState's is never shown, as godwit
// refuses it.
var actionNames = map[string]string{
	"os-migrateLive": "live-migration",
	"migrate":        "migrate",
	"resize":         "resize",
	"confirmResize":  "confirmResize",
	"revertResize":   "revertResize",
	"rebuild":        "rebuild",
	"evacuate":       "evacuate",
	"os-start":       "start",
	"os-stop":        "stop",
	"reboot":         "reboot",
	"os-resetState":  "resetState",
	"lock":           "lock",
	"unlock":         "unlock",
}

// recorded are the routes whose requests Nova records as instance
// actions, godwit's own and Nova's, each with the action's name for an
// audit record ("": none). Host-wide drains and evacuations, and
// godwit's own abort and force-complete of a migration (whose paths name
// a host or a migration, not a server), are not among them.
var recorded = map[string]func(rec api.AuditRecord) string{
	"POST " + v21 + "/servers":                                              always("create"),
	"DELETE " + v21 + "/servers/{server_id}":                                always("delete"),
	"POST " + v21 + "/servers/{server_id}/action":                           func(rec api.AuditRecord) string { return actionNames[rec.Action] },
	"POST " + v21 + "/servers/{server_id}/migrations/{migration_id}/action": always("live_migration_force_complete"),
	"DELETE " + v21 + "/servers/{server_id}/migrations/{migration_id}":      always("live_migration_cancel"),
	"POST /v1/vms":               always("create"),
	"DELETE /v1/vms/{name}":      always("delete"),
	"POST /v1/vms/{name}/lock":   always("lock"),
	"POST /v1/vms/{name}/unlock": always("unlock"),
	"POST /v1/vms/{name}/{action}": func(rec api.AuditRecord) string {
		if a := path.Base(rec.Path); slices.Contains(api.VMActions, a) {
			return a // start, stop, reboot: Nova's names too
		}
		return ""
	},
	// godwit's moves answer 200 for a plan (dry run), which did nothing.
	"POST /v1/vms/{name}/migrate": started(func(rec api.AuditRecord) string {
		switch api.MigrationKind(rec.Action) {
		case api.KindLive:
			return "live-migration"
		case api.KindCold:
			return "migrate"
		}
		return ""
	}),
	"POST /v1/vms/{name}/resize":    started(always("resize")),
	"POST /v1/vms/{name}/rebuild":   started(always("rebuild")),
	"POST /v1/intents/{id}/confirm": always("confirmResize"),
	"POST /v1/intents/{id}/revert":  always("revertResize"),
}

const v21 = ComputePrefix + "/v2.1"

func always(name string) func(api.AuditRecord) string {
	return func(api.AuditRecord) string { return name }
}

func started(f func(api.AuditRecord) string) func(api.AuditRecord) string {
	return func(rec api.AuditRecord) string {
		if rec.Status == http.StatusOK {
			return ""
		}
		return f(rec)
	}
}

// recordedRoutes matches a record's method and path to its route in
// recorded, as the controller's mux matched the request.
var recordedRoutes = func() *http.ServeMux {
	m := http.NewServeMux()
	for pattern := range recorded {
		m.HandleFunc(pattern, func(http.ResponseWriter, *http.Request) {})
	}
	return m
}()

// actionName is the Nova instance action an audit record stands for, or
// "" when Nova would record none.
func actionName(rec api.AuditRecord) string {
	if rec.RequestID == "" || rec.Status >= 400 && rec.Status < 500 {
		return ""
	}
	_, pattern := recordedRoutes.Handler(&http.Request{Method: rec.Method, URL: &url.URL{Path: rec.Path}})
	if f := recorded[pattern]; f != nil {
		return f(rec)
	}
	return ""
}

// noteAction wraps POST /servers/{id}/action: it notes the action's name,
// the body's one key, for the request's audit record (the path does not
// say it), and leaves the body to the handler.
func noteAction(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		var body map[string]json.RawMessage
		if json.Unmarshal(b, &body) == nil && len(body) == 1 {
			for name := range body {
				audit.NoteAction(r.Context(), name)
			}
		}
		h(w, r)
	}
}

// instanceAction is one audited request as one of Nova's instance
// actions.
type instanceAction struct {
	name string
	rec  api.AuditRecord
}

func (ia instanceAction) failed() bool { return ia.rec.Status >= 500 }

// finished is when the request was answered.
func (ia instanceAction) finished() time.Time {
	return ia.rec.Time.Add(time.Duration(ia.rec.DurationMS) * time.Millisecond)
}

// serverActions are a server's actions, newest first. A server that no
// longer exists is found by its records from 2.21 on, as Nova reads a
// deleted server's actions then; one of another project (for a member),
// or of which nothing is known, is not found.
func (a *API) serverActions(r *http.Request, v Microversion) ([]instanceAction, error) {
	id := r.PathValue("server_id")
	_, err := a.vmByID(r, id)
	gone := err != nil
	if gone && (errs.Code(err) != api.CodeNotFound || !v.AtLeast(21)) {
		return nil, err
	}
	recs, err := a.Svc.Audit(r.Context(), api.AuditFilter{VMID: id, Limit: maxActions})
	if err != nil {
		return nil, err
	}
	if gone && (len(recs) == 0 || !isAdmin(r) && recs[0].Project != project(r)) {
		return nil, ServerNotFound(id)
	}
	var out []instanceAction
	for _, rec := range recs {
		if name := actionName(rec); name != "" {
			out = append(out, instanceAction{name, rec})
		}
	}
	return out, nil
}

// listActions is GET /servers/{id}/os-instance-actions; from 2.58 with
// changes-since, marker (a request ID) and limit, as Nova pages them.
func (a *API) listActions(w http.ResponseWriter, r *http.Request, v Microversion) {
	ias, err := a.serverActions(r, v)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	limit := 0 // none: all of them, as limit=0 is in Nova
	if v.AtLeast(58) {
		if limit, err = queryInt(q, "limit"); err != nil {
			WriteError(w, r, err)
			return
		}
		if s := q.Get("changes-since"); s != "" {
			since, err := parseTime(s)
			if err != nil {
				WriteError(w, r, errs.Invalid("changes-since %q is not a date and time (ISO 8601)", s))
				return
			}
			ias = slices.DeleteFunc(ias, func(ia instanceAction) bool { return ia.finished().Before(since) })
		}
		if m := q.Get("marker"); m != "" {
			i := slices.IndexFunc(ias, func(ia instanceAction) bool { return ia.rec.RequestID == m })
			if i < 0 {
				WriteError(w, r, errs.Invalid("Marker %s could not be found.", m))
				return
			}
			ias = ias[i+1:]
		}
		if limit > 0 && len(ias) > limit {
			ias = ias[:limit]
		}
	}
	out := []map[string]any{}
	for _, ia := range ias {
		out = append(out, actionView(v, r.PathValue("server_id"), ia))
	}
	body := map[string]any{"instanceActions": out}
	if limit > 0 && len(out) == limit {
		next := *r.URL
		nq := next.Query()
		nq.Set("marker", ias[len(ias)-1].rec.RequestID)
		next.RawQuery = nq.Encode()
		body["links"] = []map[string]string{{"rel": "next", "href": baseURL(r) + next.RequestURI()}}
	}
	writeJSON(w, http.StatusOK, body)
}

// showAction is GET /servers/{id}/os-instance-actions/{request_id}: the
// action with its event, shown to admins always (with the error as its
// traceback) and to members from 2.51, as in Nova.
func (a *API) showAction(w http.ResponseWriter, r *http.Request, v Microversion) {
	ias, err := a.serverActions(r, v)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	id := r.PathValue("request_id")
	i := slices.IndexFunc(ias, func(ia instanceAction) bool { return ia.rec.RequestID == id })
	if i < 0 {
		WriteError(w, r, errs.NotFound("Action %s not found", id))
		return
	}
	ia := ias[i]
	view := actionView(v, r.PathValue("server_id"), ia)
	if isAdmin(r) || v.AtLeast(51) {
		result := "Success"
		if ia.failed() {
			result = "Error"
		}
		event := map[string]any{"event": eventName(ia.rec), "start_time": actionStamp(ia.rec.Time),
			"finish_time": actionStamp(ia.finished()), "result": result}
		if isAdmin(r) {
			event["traceback"] = nilIfEmpty(ia.rec.Error)
		}
		view["events"] = []any{event}
	}
	writeJSON(w, http.StatusOK, map[string]any{"instanceAction": view})
}

func actionView(v Microversion, serverID string, ia instanceAction) map[string]any {
	user, proj := caller(ia.rec.Who)
	view := map[string]any{
		"action": ia.name, "instance_uuid": serverID, "request_id": ia.rec.RequestID,
		"user_id": user, "project_id": proj, "start_time": actionStamp(ia.rec.Time), "message": nil,
	}
	if ia.failed() {
		view["message"] = "Error"
	}
	if v.AtLeast(58) {
		view["updated_at"] = actionStamp(ia.finished())
	}
	return view
}

// eventName is an action's one event: the request as it was made (which
// API, which route), e.g. "POST /v1/vms/web/stop" or
// "POST /compute/v2.1/servers/ID/action os-stop".
func eventName(rec api.AuditRecord) string {
	name := rec.Method + " " + rec.Path
	if rec.Action != "" {
		name += " " + rec.Action
	}
	return name
}

// caller is who made an audited request, as Keystone names it: the
// token's ID (a godwit token is a Keystone user) and its project, read
// from the record's Who (api.Principal.String). A cluster without a CA
// has one caller, anyone, in project default.
func caller(who string) (user, project string) {
	_, rest, ok := strings.Cut(who, " token ")
	if !ok {
		return "anyone", "default"
	}
	user, rest, _ = strings.Cut(rest, " (")
	if i := strings.LastIndex(rest, ", project "); i >= 0 {
		project = strings.TrimSuffix(rest[i+len(", project "):], ")")
	}
	return user, project
}

// actionStamp is the time format of Nova's instance actions: UTC, to the
// microsecond, no zone.
func actionStamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

// parseTime reads a time as Nova's changes-since takes it: ISO 8601,
// with or without a zone (none: UTC) and fractions of a second.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Parse(time.RFC3339, s)
}

package controller_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver/fake"
)

// TestNovaInstanceActions: openstack server event list and show read a
// server's actions from godwit's audit log — made through Nova's API
// (create, stop, start, an admin's live migration, a reboot that failed
// inside) and godwit's own (a stop) — under Nova's names, newest first,
// with the request IDs their replies carried. A refused action (a start
// of a running server, 409) is none, as in Nova. Another project's
// member finds no server; from 2.21 a deleted server's actions are read
// still; 2.58 pages them and adds updated_at.
func TestNovaInstanceActions(t *testing.T) {
	// Parallel: the clients are Python processes, mostly their start-up;
	// the suite runs them beside each other (see docs/testing.md).
	t.Parallel()
	faults := []*fake.Faults{{}, {}, {}}
	tc := newTestClusterWith(t, clusterOptions{tls: true, faults: faults}, 4, 8192, 8192, 8192)
	ctx := tc.ctx
	tc.importFakeKernel(t, "cirros")
	alice := tc.memberToken(t, "alice", "alpha")
	bob := tc.memberToken(t, "bob", "beta")
	os := newOpenStack(t, tc, map[string][3]string{
		"admin": {"bootstrap-admin", tc.adminToken, "default"},
		"alice": {"alice", alice.Secret, "alpha"},
		"bob":   {"bob", bob.Secret, "beta"},
	})
	if _, err := tc.client.CreateFlavor(ctx, api.CreateFlavorRequest{Name: "m1.small", VCPUs: 1, MemoryMiB: 256}); err != nil {
		t.Fatal(err)
	}

	// nova calls the compute API with a token at a microversion ("":
	// 2.1) and returns the status, the request ID the reply carried and
	// the body.
	nova := func(token, method, path, body, version string) (int, string, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, tc.url+"/compute/v2.1"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if version != "" {
			req.Header.Set("OpenStack-API-Version", "compute "+version)
		}
		resp, err := tc.client.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		id := resp.Header.Get("X-Openstack-Request-Id")
		if !strings.HasPrefix(id, "req-") || resp.Header.Get("X-Compute-Request-Id") != id || resp.Header.Get("X-Request-Id") != id {
			t.Errorf("%s %s: request ID headers %v", method, path, resp.Header)
		}
		return resp.StatusCode, id, out
	}
	var id string // the server's
	act := func(token, action, version string, want int) string {
		t.Helper()
		code, req, out := nova(token, "POST", "/servers/"+id+"/action", action, version)
		if code != want {
			t.Fatalf("%s: HTTP %d, want %d: %v", action, code, want, out)
		}
		return req
	}

	// As alice: create, stop, start; a start of the running server is
	// refused.
	code, createReq, out := nova(alice.Secret, "POST", "/servers", `{"server":{"name":"web","imageRef":"cirros","flavorRef":"m1.small"}}`, "")
	srv, _ := out["server"].(map[string]any)
	id, _ = srv["id"].(string)
	if code != 202 || id == "" {
		t.Fatalf("server create: %d %v", code, out)
	}
	waitNovaStatus(t, tc, id, "ACTIVE", "")
	stopReq := act(alice.Secret, `{"os-stop":null}`, "", 202)
	waitVMState(t, tc, "web", api.VMStopped)
	startReq := act(alice.Secret, `{"os-start":null}`, "", 202)
	waitVMState(t, tc, "web", api.VMRunning)
	refusedReq := act(alice.Secret, `{"os-start":null}`, "", 409)
	// As the admin: a live migration.
	vm, _ := tc.client.VM(ctx, "web")
	liveReq := act(tc.adminToken, `{"os-migrateLive":{"host":null,"block_migration":"auto"}}`, "2.30", 202)
	waitNovaStatus(t, tc, id, "ACTIVE", "!"+vm.Host)
	// A reboot that fails inside: the hypervisor refuses it (500).
	for _, f := range faults {
		f.Fail("Reboot", 1, errors.New("the guest would not reset"))
	}
	rebootReq := act(alice.Secret, `{"reboot":{"type":"SOFT"}}`, "", 500)
	// godwit's own API: a stop, found in the audit log by the VM's ID.
	if _, err := tc.client.VMAction(ctx, "web", "stop", api.VMActionRequest{}); err != nil {
		t.Fatal(err)
	}
	recs, err := tc.client.Audit(ctx, api.AuditFilter{VMID: id, Limit: 1})
	if err != nil || len(recs) != 1 || recs[0].Path != "/v1/vms/web/stop" || recs[0].Project != "alpha" || recs[0].RequestID == "" {
		t.Fatalf("the audit log's newest record of the server: %+v, %v", recs, err)
	}
	godwitStopReq := recs[0].RequestID

	// The list: newest first, each with its request ID; the refused
	// start is none.
	want := []struct{ req, action, message, project, user string }{
		{godwitStopReq, "stop", "", "default", ""},
		{rebootReq, "reboot", "Error", "alpha", alice.ID},
		{liveReq, "live-migration", "", "default", ""},
		{startReq, "start", "", "alpha", alice.ID},
		{stopReq, "stop", "", "alpha", alice.ID},
		{createReq, "create", "", "alpha", alice.ID},
	}
	var events []map[string]any
	os.json(&events, "alice", "server", "event", "list", "--long", "web")
	if len(events) != len(want) {
		t.Fatalf("server event list: %d actions, want %d: %v", len(events), len(want), events)
	}
	for i, w := range want {
		e := events[i]
		msg, _ := e["Message"].(string)
		if e["Request ID"] != w.req || e["Action"] != w.action || e["Server ID"] != id || msg != w.message || e["Project ID"] != w.project ||
			(w.user != "" && e["User ID"] != w.user) {
			t.Errorf("server event list [%d]: %v; want %s %s (message %q, project %s)", i, e, w.action, w.req, w.message, w.project)
		}
		if e["Request ID"] == refusedReq {
			t.Errorf("the refused start is listed: %v", e)
		}
	}

	// show: the action and its one event — the request — to alice from
	// 2.51 (none before, as in Nova), to the admin with the error as
	// the traceback.
	var ev map[string]any
	os.json(&ev, "alice", "--os-compute-api-version", "2.51", "server", "event", "show", "web", stopReq)
	if ev["action"] != "stop" || ev["request_id"] != stopReq || ev["instance_uuid"] != id || ev["message"] != nil ||
		!strings.Contains(fmt.Sprint(ev["events"]), "os-stop") || !strings.Contains(fmt.Sprint(ev["events"]), "Success") {
		t.Errorf("server event show (2.51): %v", ev)
	}
	ev = nil
	os.json(&ev, "alice", "server", "event", "show", "web", stopReq)
	if ev["action"] != "stop" || ev["events"] != nil {
		t.Errorf("server event show (2.1), a member: %v; want no events", ev)
	}
	os.json(&ev, "admin", "server", "event", "show", id, rebootReq)
	if ev["action"] != "reboot" || ev["message"] != "Error" || !strings.Contains(fmt.Sprint(ev["events"]), "Error") ||
		!strings.Contains(fmt.Sprint(ev["events"]), "would not reset") {
		t.Errorf("server event show of the failed reboot, as the admin: %v", ev)
	}
	if out, err := os.try("alice", "server", "event", "show", "web", refusedReq); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("server event show of the refused start: %v\n%s", err, out)
	}

	// Another project's member: no such server, by name or ID.
	if out, err := os.try("bob", "server", "event", "list", id); err == nil || !strings.Contains(out, "could not be found") {
		t.Errorf("bob listing alpha's server's actions: %v\n%s", err, out)
	}
	if code, _, out := nova(bob.Secret, "GET", "/servers/"+id+"/os-instance-actions/"+stopReq, "", "2.51"); code != 404 {
		t.Errorf("bob showing alpha's server's action: %d %v", code, out)
	}

	// 2.58: updated_at, and pages by limit and marker with a next link.
	code, _, out = nova(alice.Secret, "GET", "/servers/"+id+"/os-instance-actions?limit=4", "", "2.58")
	page, _ := out["instanceActions"].([]any)
	links := fmt.Sprint(out["links"])
	if code != 200 || len(page) != 4 || !strings.Contains(links, "marker="+want[3].req) {
		t.Fatalf("a page of 4 at 2.58: %d %v", code, out)
	}
	if a, _ := page[0].(map[string]any); a["updated_at"] == nil {
		t.Errorf("2.58 shows updated_at: %v", a)
	}
	code, _, out = nova(alice.Secret, "GET", "/servers/"+id+"/os-instance-actions?limit=4&marker="+want[3].req, "", "2.58")
	if page, _ := out["instanceActions"].([]any); code != 200 || len(page) != 2 || out["links"] != nil {
		t.Errorf("the page after %s: %d %v", want[3].req, code, out)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if code, _, out := nova(alice.Secret, "GET", "/servers/"+id+"/os-instance-actions?changes-since="+future, "", "2.58"); code != 200 || len(out["instanceActions"].([]any)) != 0 {
		t.Errorf("changes-since an hour ahead: %d %v", code, out)
	}

	// Deleted: from 2.21 its actions are still read, by its ID; before,
	// and by another project's member, it is not found.
	code, deleteReq, _ := nova(alice.Secret, "DELETE", "/servers/"+id, "", "")
	if code != 204 {
		t.Fatalf("server delete: %d", code)
	}
	os.json(&events, "alice", "--os-compute-api-version", "2.21", "server", "event", "list", id)
	if len(events) != len(want)+1 || events[0]["Action"] != "delete" || events[0]["Request ID"] != deleteReq || events[len(events)-1]["Action"] != "create" {
		t.Errorf("server event list of the deleted server (2.21): %v", events)
	}
	if code, _, out := nova(alice.Secret, "GET", "/servers/"+id+"/os-instance-actions", "", ""); code != 404 {
		t.Errorf("the deleted server's actions at 2.1: %d %v", code, out)
	}
	if code, _, out := nova(bob.Secret, "GET", "/servers/"+id+"/os-instance-actions", "", "2.21"); code != 404 {
		t.Errorf("bob listing the deleted server's actions: %d %v", code, out)
	}
}

package controller_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/cli"
)

// eventSeq is the SEQ of an event ID EPOCH-SEQ.
func eventSeq(t *testing.T, id string) (string, int) {
	t.Helper()
	epoch, s, _ := strings.Cut(id, "-")
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("event ID %q is not EPOCH-SEQ", id)
	}
	return epoch, n
}

// collect reads st until done says so (given each event) or within
// passes.
func collect(t *testing.T, st *api.EventStream, within time.Duration, done func(api.Event) bool) []api.Event {
	t.Helper()
	var evs []api.Event
	timeout := time.After(within)
	for {
		select {
		case e, ok := <-st.C:
			if !ok {
				t.Fatalf("the stream ended after %d events: %v", len(evs), st.Err())
			}
			evs = append(evs, e)
			if done(e) {
				return evs
			}
		case <-timeout:
			t.Fatalf("no end within %s; %d events", within, len(evs))
		}
	}
}

// A client that disconnects in the middle of a live migration and comes
// back with the last ID it saw (Last-Event-ID) misses nothing: the IDs
// run on without a gap, no reset comes, and the migration's progress and
// final state are there. A script's replay (?follow=false) after the
// same ID gives the same events.
func TestEventsResumeMissesNothing(t *testing.T) {
	tc := newTestCluster(t, 2, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	c := tc.client

	ctx1, disconnect := context.WithCancel(ctx)
	defer disconnect()
	st, err := c.Events(ctx1, api.EventFilter{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 512}}); err != nil {
		t.Fatal(err)
	}
	// 512 MiB at 100 MB/s: over five seconds of progress.
	mig, err := c.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, BandwidthMBPerS: 100})
	if err != nil {
		t.Fatal(err)
	}
	before := collect(t, st, 20*time.Second, func(e api.Event) bool {
		m, err := e.Migration()
		return err == nil && m.ID == mig.ID && m.Progress.MemoryTransferred > 0 && !m.State.Final()
	})
	disconnect()
	last := before[len(before)-1].ID
	time.Sleep(700 * time.Millisecond) // progress goes on meanwhile

	st2, err := c.Events(ctx, api.EventFilter{}, last)
	if err != nil {
		t.Fatal(err)
	}
	var final api.Migration
	after := collect(t, st2, 30*time.Second, func(e api.Event) bool {
		m, err := e.Migration()
		if err == nil && m.ID == mig.ID && m.State.Final() {
			final = m
			return true
		}
		return false
	})
	if final.State != api.MigCompleted {
		t.Errorf("the migration ended %s (%s)", final.State, final.Reason)
	}

	all := append(before, after...)
	epoch, first := eventSeq(t, all[0].ID)
	kinds := map[api.EventKind]int{}
	progress := 0
	for i, e := range all {
		ep, n := eventSeq(t, e.ID)
		if ep != epoch || n != first+i {
			t.Fatalf("event %d has ID %s, want %s-%d: one was missed (resumed after %s)", i, e.ID, epoch, first+i, last)
		}
		kinds[e.Kind]++
		if m, err := e.Migration(); err == nil && e.Name == mig.ID && i >= len(before) && !m.State.Final() {
			progress++
		}
	}
	if kinds[api.EventReset] != 0 || kinds[api.EventVM] == 0 || kinds[api.EventMigration] == 0 {
		t.Errorf("event kinds %v; want vm and migration events and no reset", kinds)
	}
	if progress == 0 {
		t.Errorf("no progress of the migration after the reconnect")
	}
	t.Logf("%d events before the disconnect, %d after (resumed after %s), %d of progress after", len(before), len(after), last, progress)

	// The same after the same ID with the header, as a script reads it.
	replay := replayEvents(t, tc, tc.client.Token, last)
	if len(replay) < len(after) {
		t.Fatalf("replay after %s: %d events, want at least %d", last, len(replay), len(after))
	}
	for i, e := range after {
		if replay[i].ID != e.ID || string(replay[i].Object) != string(e.Object) {
			t.Fatalf("replay event %d is %s, the stream's %s", i, replay[i].ID, e.ID)
		}
	}

	// An ID from another controller process: a reset, then the stream.
	if evs := replayEvents(t, tc, tc.client.Token, "0-5"); len(evs) != 1 || evs[0].Kind != api.EventReset || !strings.Contains(evs[0].Reason, "restarted") {
		t.Errorf("resume after another process's ID: %+v; want one reset", evs)
	}
}

// replayEvents is GET /v1/events?follow=false after lastID (the
// Last-Event-ID header), parsed.
func replayEvents(t *testing.T, tc *testCluster, token, lastID string) []api.Event {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, tc.url+"/v1/events?follow=false", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", lastID)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := tc.client.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("HTTP %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var evs []api.Event
	var id, kind string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		field, value, _ := strings.Cut(sc.Text(), ": ")
		switch field {
		case "id":
			id = value
		case "event":
			kind = value
		case "data":
			var e api.Event
			if err := json.Unmarshal([]byte(value), &e); err != nil {
				t.Fatal(err)
			}
			if e.ID != id || string(e.Kind) != kind {
				t.Errorf("event %s (%s) in data, %s (%s) in the fields", e.ID, e.Kind, id, kind)
			}
			evs = append(evs, e)
		}
	}
	return evs
}

// A member's stream carries its project's events only: not another
// project's VMs, migrations or intents, nor a host's.
func TestEventsMemberSeesOwnProject(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	adm := tc.client
	members := map[string]*api.Client{}
	for _, p := range []string{"alpha", "beta"} {
		tok, err := adm.CreateToken(ctx, api.CreateTokenRequest{Name: p + "-user", Project: p, Role: api.RoleMember})
		if err != nil {
			t.Fatal(err)
		}
		mc := tc.userClient(t)
		mc.Token = tok.Secret
		members[p] = mc
	}
	streams := map[string]*api.EventStream{}
	for p, mc := range members {
		st, err := mc.Events(ctx, api.EventFilter{}, "")
		if err != nil {
			t.Fatal(err)
		}
		streams[p] = st
	}
	flavor := api.Flavor{VCPUs: 1, MemoryMiB: 64}
	for _, p := range []string{"alpha", "beta"} {
		if _, err := adm.CreateVM(ctx, api.CreateVMRequest{Name: p + "-vm", Project: p, Image: "guest", Pool: api.PoolShared, Host: "host1", Flavor: flavor}); err != nil {
			t.Fatal(err)
		}
	}
	mig, err := adm.Migrate(ctx, "beta-vm", api.MigrateRequest{Kind: api.KindLive})
	if err != nil {
		t.Fatal(err)
	}
	waitMigration(t, adm, mig.ID)
	drain, err := adm.Drain(ctx, "host2", api.DrainRequest{}) // a host's intent: admins' only
	if err != nil {
		t.Fatal(err)
	}
	waitIntent(t, adm, drain.ID, 30*time.Second)
	// The last of alpha's changes, made after all of beta's: once alpha's
	// member has it, it has had the chance to see beta's.
	if _, err := adm.VMAction(ctx, "alpha-vm", "stop", api.VMActionRequest{Force: true}); err != nil {
		t.Fatal(err)
	}

	alpha := collect(t, streams["alpha"], 20*time.Second, func(e api.Event) bool {
		vm, err := e.VM()
		return err == nil && vm.Name == "alpha-vm" && vm.State == api.VMStopped
	})
	beta := collect(t, streams["beta"], 20*time.Second, func(e api.Event) bool {
		m, err := e.Migration()
		return err == nil && m.ID == mig.ID && m.State.Final()
	})
	for p, evs := range map[string][]api.Event{"alpha": alpha, "beta": beta} {
		for _, e := range evs {
			if e.Project != p || strings.Contains(string(e.Object), drain.ID) {
				t.Errorf("%s's member got %s %s %s of project %q", p, e.Kind, e.Action, e.Name, e.Project)
			}
		}
		t.Logf("%s's member: %d events", p, len(evs))
	}
	// The replay of everything kept, as each sees it.
	epoch, _ := eventSeq(t, alpha[0].ID)
	for p, mc := range members {
		for _, e := range replayEvents(t, tc, mc.Token, epoch+"-0") {
			if e.Project != p {
				t.Errorf("%s's member's replay has %s %s of project %q", p, e.Kind, e.Name, e.Project)
			}
		}
	}
	// The admin's has them all, the drain's intent too.
	intents := 0
	all := replayEvents(t, tc, adm.Token, epoch+"-0")
	for _, e := range all {
		if in, err := e.Intent(); err == nil && in.ID == drain.ID {
			intents++
		}
	}
	if len(all) <= len(alpha)+len(beta) || intents == 0 {
		t.Errorf("the admin's replay has %d events, %d of the drain; want more than the members' %d, and the drain's", len(all), intents, len(alpha)+len(beta))
	}
}

// godwit migrate --wait against a real controller follows its event
// stream to the migration's end: the progress lines, then the summary.
func TestMigrateWaitFollowsEvents(t *testing.T) {
	tc := newTestCluster(t, 2, 2048)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	root := cli.NewRoot(&out, &errOut)
	root.SetArgs([]string{"--server", tc.url, "migrate", "web", "--live", "--bandwidth", "100", "--wait"})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("godwit migrate --wait: %v\n%s%s", err, out.String(), errOut.String())
	}
	got := out.String()
	if !strings.Contains(got, "transferring ") || !regexp.MustCompile(`State: +completed`).MatchString(got) {
		t.Errorf("godwit migrate --wait shows:\n%s", got)
	}
	t.Logf("godwit migrate --wait:\n%s", got)
}

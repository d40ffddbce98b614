package controller_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
)

// waitHosts polls the host list until cond holds for it.
func waitHosts(t *testing.T, tc *testCluster, what string, cond func(map[string]api.Host) bool) map[string]api.Host {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hs, err := tc.client.Hosts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]api.Host{}
		for _, h := range hs {
			m[h.Name] = h
		}
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: hosts %+v", what, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Controller 1.4 works with agents of 1.3 and 1.4 (and 1.5), and refuses
// 1.6 and 1.2 with 403 and the rule, showing the host as incompatible
// with the reason; an agent upgraded to a fitting version is up again.
func TestAgentVersionSkew(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{ctrlVersion: "1.4.0", versions: []string{"1.4.2", "1.3.0", "1.6.0"}}, 2, 1024, 1024, 1024)
	m := waitHosts(t, tc, "host3 incompatible, the others up", func(m map[string]api.Host) bool {
		return m["host1"].State == api.HostUp && m["host2"].State == api.HostUp && m["host3"].State == api.HostIncompatible
	})
	if r := m["host3"].StateReason; !strings.Contains(r, "agent 1.6.0 is too new for controller 1.4.0") || !strings.Contains(r, "upgrade it to 1.5 or 1.6") {
		t.Errorf("host3's reason: %q", r)
	}
	if m["host2"].Version != "1.3.0" || m["host2"].StateReason != "" {
		t.Errorf("host2: %+v", m["host2"])
	}
	h3, err := tc.client.Host(context.Background(), "host3")
	if err != nil || h3.State != api.HostIncompatible {
		t.Errorf("host show host3: %+v, %v", h3, err)
	}

	// The heartbeat's answer: 403 and what to do.
	hb, _ := json.Marshal(hostapi.Heartbeat{Host: api.Host{Name: "host9", Address: "http://127.0.0.1:1", Version: "2.0.0"}})
	code, e := tc.raw(t, http.MethodPost, "/v1/internal/heartbeat", "application/json", string(hb))
	if code != http.StatusForbidden || !strings.Contains(e.Message, "host host9 refused: agent 2.0.0 and controller 1.4.0 differ in their major version") ||
		!strings.Contains(e.Message, "upgrade the controller to 2.x") {
		t.Errorf("heartbeat of a 2.0 agent: %d %q", code, e.Message)
	}

	// Nothing lands on the refused host.
	tc.importFakeKernel(t, "img")
	for _, n := range []string{"a", "b", "c", "d"} {
		vm, err := tc.client.CreateVM(context.Background(), api.CreateVMRequest{Name: n, Image: "img", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}})
		if err != nil {
			t.Fatal(err)
		}
		if vm.Host == "host3" {
			t.Errorf("vm %s placed on the incompatible host3", n)
		}
	}

	// host3's agent upgraded (here: downgraded to the controller's
	// next minor); host2's to a release two minors behind.
	tc.stopAgent(3)
	tc.agents[2].cfg.Version = "1.5.0"
	tc.startAgent(t, 3)
	tc.stopAgent(2)
	tc.agents[1].cfg.Version = "1.2.0"
	tc.startAgent(t, 2)
	m = waitHosts(t, tc, "host3 up, host2 incompatible", func(m map[string]api.Host) bool {
		return m["host3"].State == api.HostUp && m["host2"].State == api.HostIncompatible
	})
	if m["host3"].StateReason != "" || m["host3"].Version != "1.5.0" {
		t.Errorf("host3: %+v", m["host3"])
	}
	if r := m["host2"].StateReason; !strings.Contains(r, "agent 1.2.0 is too old for controller 1.4.0") || !strings.Contains(r, "upgrade it to 1.3 or 1.4") {
		t.Errorf("host2's reason: %q", r)
	}
}

package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/pki"
)

// Disk transfers between agents, in a cluster with a CA: a host's
// certificate reads a VM's disk from another host's agent only with the
// token the controller granted for that VM's move — without one, with
// another VM's, or after the grant is revoked it is refused (403 with the
// reason); a host may not grant itself one, nor make any other call; a
// destination pulls only from the host the controller names (its
// certificate's name is checked); and a cold move, which uses a token of
// its own, completes.
func TestDiskTransferTokens(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 2, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	ids := map[string]string{}
	for _, name := range []string{"a", "b"} {
		vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Pool: api.PoolLocal, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tc.client.VMAction(ctx, name, "stop", api.VMActionRequest{Force: true}); err != nil {
			t.Fatal(err)
		}
		ids[name] = vm.ID
	}
	identity := func(dir string) *pki.Identity {
		id, ok, err := pki.LoadIdentity(dir)
		if err != nil || !ok {
			t.Fatalf("certificate in %s: %v %v", dir, ok, err)
		}
		return id
	}
	ctrl := identity(tc.tlsDir)
	host2 := identity(filepath.Join(tc.agents[1].cfg.StateDir, "tls"))
	host1URL := tc.agents[0].cfg.Advertise
	asController := hostapi.NewAgentTLS(host1URL, 10*time.Second, ctrl.ClientConfig(pki.Peer{Roles: []string{pki.RoleHost}, Name: "host1"}))
	fromHost2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: host2.ClientConfig(pki.Peer{Roles: []string{pki.RoleHost}, Name: "host1"})}}
	// read is host2 reading a VM's disk (or its checksum) on host1.
	read := func(vm, sub, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, host1URL+"/v1/vms/"+ids[vm]+"/"+sub, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := fromHost2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e api.Error
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Message
	}

	tokA := hostapi.NewTransferToken()
	if err := asController.GrantDiskTransfer(ctx, ids["a"], hostapi.TransferGrant{Token: tokA, TTLSeconds: 60}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"disk", "disk/sha256"} {
		for _, tt := range []struct{ why, vm, token, want string }{
			{"no token", "a", "", "needs its move's transfer token"},
			{"another vm's token", "b", tokA, "no disk transfer of vm"},
			{"a wrong token", "a", hostapi.NewTransferToken(), "not the one granted"},
		} {
			if status, msg := read(tt.vm, sub, tt.token); status != http.StatusForbidden || !strings.Contains(msg, tt.want) {
				t.Errorf("host2 reads vm %s's %s with %s: %d %q; want 403 saying %q", tt.vm, sub, tt.why, status, msg, tt.want)
			}
		}
		if status, msg := read("a", sub, tokA); status != http.StatusOK {
			t.Errorf("host2 reads vm a's %s with its token: %d %q; want 200", sub, status, msg)
		}
	}
	// A host's certificate may not grant itself a transfer, nor make the
	// controller's calls.
	req, _ := http.NewRequest(http.MethodPut, host1URL+"/v1/vms/"+ids["b"]+"/disk-grant",
		strings.NewReader(`{"token":"`+hostapi.NewTransferToken()+`","ttl_seconds":60}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := fromHost2.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("host2 grants itself a transfer on host1: %v %v; want 403", resp.Status, err)
	}
	if resp, err := fromHost2.Get(host1URL + "/v1/vms"); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("host2 lists host1's vms: %v %v; want 403", resp.Status, err)
	}

	// The destination pulls only from the host the controller names: an
	// import naming host3 for host1's address fails at the handshake.
	asController2 := hostapi.NewAgentTLS(tc.agents[1].cfg.Advertise, 10*time.Second, ctrl.ClientConfig(pki.Peer{Roles: []string{pki.RoleHost}, Name: "host2"}))
	vmA, _ := tc.client.VM(ctx, "a")
	im, _ := tc.client.Image(ctx, "guest")
	create := hostapi.CreateVM{ID: ids["a"], Name: "a", VCPUs: 1, MemoryMiB: 256, DiskMiB: 64, Pool: api.PoolLocal, Image: im, BaseSHA256: vmA.ImageSHA256}
	if err := asController2.ImportDisk(ctx, hostapi.ImportDisk{VM: create, Source: host1URL, SourceHost: "host3", Token: tokA}); err != nil {
		t.Fatal(err)
	}
	st := waitImport(t, asController2, ids["a"])
	if st.Status != "failed" || !strings.Contains(st.Error, `want "host3"`) {
		t.Errorf("an import from host1's address naming host3: %+v; want failed on the certificate's name", st)
	}
	if err := asController2.DeleteVM(ctx, ids["a"]); err != nil {
		t.Fatal(err)
	}
	// Not https to HOST:PORT: refused before anything is fetched.
	err := asController2.ImportDisk(ctx, hostapi.ImportDisk{VM: create, Source: host1URL + "/v1/vms/x", SourceHost: "host1", Token: tokA})
	if !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("an import from a URL with a path: %v; want 400", err)
	}

	// Revoked, the token lets nothing in.
	if err := asController.RevokeDiskTransfer(ctx, ids["a"]); err != nil {
		t.Fatal(err)
	}
	if status, msg := read("a", "disk", tokA); status != http.StatusForbidden {
		t.Errorf("host2 reads vm a's disk after the grant was revoked: %d %q; want 403", status, msg)
	}

	// A cold move uses a token of its own, and ends with it revoked. (Under
	// the race detector on a busy machine a heartbeat can come late and
	// leave b unknown for a moment: wait until it reads stopped again.)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if v, err := tc.client.VM(ctx, "b"); err == nil && v.State == api.VMStopped {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("vm b is %s, not stopped: %v", v.State, err)
		}
	}
	m, err := tc.client.Migrate(ctx, "b", api.MigrateRequest{Kind: api.KindCold, To: "host2"})
	if err != nil {
		t.Fatal(err)
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted || !m.Encrypted || m.Progress.DiskTransferred == 0 {
		t.Fatalf("cold move of b with its transfer token: %s (encrypted %v, %d disk bytes): %s", m.State, m.Encrypted, m.Progress.DiskTransferred, m.Reason)
	}
	if b, _ := json.Marshal(m); strings.Contains(string(b), "token") {
		t.Errorf("the migration record shows a token: %s", b)
	}
}

// waitImport waits for a disk import to end.
func waitImport(t *testing.T, a *hostapi.Agent, id string) hostapi.ImportStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := a.ImportStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "active" || time.Now().After(deadline) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
}

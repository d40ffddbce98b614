package controller_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// A locked VM refuses a member's changes (409 saying who locked it, why
// and how to unlock it) and not an admin's; its console and display
// name stay open, as in Nova. Locking a locked VM changes nothing; a
// member's lock is unlocked by another member of the project, an
// admin's only by an admin; the lock survives a controller restart.
func TestVMLock(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	alice, aliceTok := tc.memberClient(t, "alice", "alpha")
	bob, _ := tc.memberClient(t, "bob", "alpha")
	admin := tc.client
	if _, err := alice.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}, MaxVCPUs: 4, MaxMemoryMiB: 1024}); err != nil {
		t.Fatal(err)
	}

	vm, err := alice.LockVM(ctx, "web", "release freeze")
	if err != nil {
		t.Fatal(err)
	}
	if l := vm.Lock; l == nil || l.By != aliceTok.ID || l.ByName != "alice" || l.ByAdmin || l.Reason != "release freeze" || l.At.IsZero() {
		t.Fatalf("lock = %+v; want alice's, with its reason", vm.Lock)
	}
	// Locking again changes nothing (as in Nova), whoever of the project asks.
	if again, err := bob.LockVM(ctx, "web", "other"); err != nil || again.Lock == nil || again.Lock.By != aliceTok.ID || again.Lock.Reason != "release freeze" {
		t.Fatalf("lock again = %+v, %v; want alice's lock kept", again.Lock, err)
	}

	says := `vm "web" is locked by member alice (token ` + aliceTok.ID
	_, err = alice.VMAction(ctx, "web", "stop", api.VMActionRequest{})
	wantAPIError(t, err, http.StatusConflict, says)
	wantAPIError(t, err, http.StatusConflict, "(release freeze); unlock it with: godwit vm unlock web")
	wantAPIError(t, alice.DeleteVM(ctx, "web"), http.StatusConflict, says)
	_, err = bob.Resize(ctx, "web", api.ResizeRequest{VCPUs: 2})
	wantAPIError(t, err, http.StatusConflict, says)
	_, err = alice.Rebuild(ctx, "web", api.RebuildRequest{})
	wantAPIError(t, err, http.StatusConflict, says)
	_, err = alice.UpdateVM(ctx, "web", api.UpdateVMRequest{Metadata: map[string]string{"k": "v"}})
	wantAPIError(t, err, http.StatusConflict, says)
	name := "shop"
	if _, err := alice.UpdateVM(ctx, "web", api.UpdateVMRequest{DisplayName: &name}); err != nil {
		t.Fatalf("a display name while locked: %v; want it changed, as in Nova", err)
	}
	if rc, err := alice.Console(ctx, "web", 0, false); err != nil {
		t.Fatalf("console while locked: %v", err)
	} else {
		rc.Close()
	}

	// An admin is not stopped: a stop, and a move.
	if _, err := admin.VMAction(ctx, "web", "stop", api.VMActionRequest{Force: true}); err != nil {
		t.Fatalf("admin stop of a locked vm: %v", err)
	}
	m, err := admin.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindCold, To: "host2"})
	if err != nil {
		t.Fatalf("admin migrate of a locked vm: %v", err)
	}
	waitMigration(t, admin, m.ID)

	// The lock survives a restart.
	tc.restartController(t)
	if vm, err := alice.VM(ctx, "web"); err != nil || vm.Lock == nil || vm.Lock.By != aliceTok.ID || vm.Host != "host2" {
		t.Fatalf("after a restart: %+v, %v; want alice's lock, on host2", vm.Lock, err)
	}

	// Another member of the project unlocks a member's lock (Nova's owner lock).
	if vm, err := bob.UnlockVM(ctx, "web"); err != nil || vm.Lock != nil {
		t.Fatalf("bob unlocks alice's lock: %+v, %v", vm.Lock, err)
	}
	if _, err := alice.VMAction(ctx, "web", "start", api.VMActionRequest{}); err != nil {
		t.Fatalf("start once unlocked: %v", err)
	}

	// An admin's lock: members cannot unlock it, nor change the VM; an admin unlocks it.
	if vm, err := admin.LockVM(ctx, "web", ""); err != nil || vm.Lock == nil || !vm.Lock.ByAdmin {
		t.Fatalf("admin lock: %+v, %v", vm.Lock, err)
	}
	_, err = alice.UnlockVM(ctx, "web")
	wantAPIError(t, err, http.StatusForbidden, "only an admin unlocks it")
	_, err = alice.VMAction(ctx, "web", "reboot", api.VMActionRequest{})
	wantAPIError(t, err, http.StatusConflict, "unlock it with: godwit vm unlock web (as an admin)")
	if vm, err := admin.UnlockVM(ctx, "web"); err != nil || vm.Lock != nil {
		t.Fatalf("admin unlock: %+v, %v", vm.Lock, err)
	}
	// A member's lock taken over by an admin's (as Nova's locked_by admin).
	if _, err := alice.LockVM(ctx, "web", "mine"); err != nil {
		t.Fatal(err)
	}
	if vm, err := admin.LockVM(ctx, "web", "maintenance"); err != nil || vm.Lock == nil || !vm.Lock.ByAdmin || vm.Lock.Reason != "maintenance" {
		t.Fatalf("admin over a member's lock: %+v, %v", vm.Lock, err)
	}
	if _, err := admin.UnlockVM(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := alice.DeleteVM(ctx, "web"); err != nil {
		t.Fatalf("delete once unlocked: %v", err)
	}
}

// A member's held resize is neither confirmed nor reverted while its VM
// is locked (as Nova's confirmResize and revertResize).
func TestVMLockHeldResize(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	alice, _ := tc.memberClient(t, "alice", "alpha")
	if _, err := alice.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared,
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}, MaxVCPUs: 4, MaxMemoryMiB: 1024}); err != nil {
		t.Fatal(err)
	}
	in, err := alice.Resize(ctx, "web", api.ResizeRequest{VCPUs: 2, Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	if in = waitSettled(t, alice, in.ID, 30*time.Second); in.State != api.IntentAwaitingConfirm {
		t.Fatalf("held resize ended %s (%s)", in.State, in.Reason)
	}
	if _, err := alice.LockVM(ctx, "web", ""); err != nil {
		t.Fatal(err)
	}
	_, err = alice.ConfirmResize(ctx, in.ID)
	wantAPIError(t, err, http.StatusConflict, `vm "web" is locked by member alice`)
	_, err = alice.RevertResize(ctx, in.ID)
	wantAPIError(t, err, http.StatusConflict, `vm "web" is locked by member alice`)
	if _, err := alice.UnlockVM(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ConfirmResize(ctx, in.ID); err != nil {
		t.Fatalf("confirm once unlocked: %v", err)
	}
}

// Nova's lock and unlock: a locked server shows locked (2.9), a member's
// os-stop and delete are refused 409 "Instance ID is locked" with
// godwit's explanation after it, an admin's stop is not; another member
// of the project unlocks it.
func TestNovaLock(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	alice, aliceTok := tc.memberClient(t, "alice", "alpha")
	_, bobTok := tc.memberClient(t, "bob", "alpha")
	vm, err := alice.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	nova := func(token, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, tc.url+"/compute/v2.1/servers/"+vm.ID+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("X-OpenStack-Nova-API-Version", "2.9")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := tc.userClient(t).HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	locked := func() any {
		_, out := nova(aliceTok.Secret, "GET", "", "")
		server, _ := out["server"].(map[string]any)
		return server["locked"]
	}
	if got := locked(); got != false {
		t.Fatalf("locked = %v before the lock; want false", got)
	}
	if st, out := nova(aliceTok.Secret, "POST", "/action", `{"lock": null}`); st != http.StatusAccepted {
		t.Fatalf("lock: %d %v", st, out)
	}
	if st, out := nova(aliceTok.Secret, "POST", "/action", `{"lock": null}`); st != http.StatusAccepted {
		t.Fatalf("lock of a locked server: %d %v; want 202, as in Nova", st, out)
	}
	if got := locked(); got != true {
		t.Fatalf("locked = %v; want true", got)
	}
	for _, c := range []struct{ method, path, body string }{{"POST", "/action", `{"os-stop": null}`}, {"DELETE", "", ""}} {
		st, out := nova(bobTok.Secret, c.method, c.path, c.body)
		fault, _ := out["conflictingRequest"].(map[string]any)
		msg, _ := fault["message"].(string)
		if st != http.StatusConflict || !strings.HasPrefix(msg, "Instance "+vm.ID+" is locked: ") || !strings.Contains(msg, "godwit vm unlock web") {
			t.Fatalf("%s %s of a locked server: %d %v; want 409 Instance ID is locked", c.method, c.body, st, out)
		}
	}
	if st, out := nova(tc.adminToken, "POST", "/action", `{"os-stop": null}`); st != http.StatusAccepted {
		t.Fatalf("admin os-stop of a locked server: %d %v", st, out)
	}
	if st, out := nova(bobTok.Secret, "POST", "/action", `{"unlock": null}`); st != http.StatusAccepted {
		t.Fatalf("bob unlocks alice's lock: %d %v", st, out)
	}
	if got := locked(); got != false {
		t.Fatalf("locked = %v after the unlock; want false", got)
	}
}

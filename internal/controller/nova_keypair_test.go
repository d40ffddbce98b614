package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// TestNovaKeypairs drives key pairs with Debian's openstack client: a
// member imports a public key, lists and shows it, boots a server with
// it (the key reaches the guest's NoCloud seed, and server show names
// it), and deletes it; another member sees none of it; a key pair made
// without a public key comes with its private key.
func TestNovaKeypairs(t *testing.T) {
	t.Parallel()
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 2, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "cirros")
	if _, err := tc.client.CreateFlavor(ctx, api.CreateFlavorRequest{Name: "m1.small", VCPUs: 1, MemoryMiB: 256}); err != nil {
		t.Fatal(err)
	}
	alice := tc.memberToken(t, "alice", "alpha")
	bob := tc.memberToken(t, "bob", "beta")
	os_ := newOpenStack(t, tc, map[string][3]string{
		"alice": {"alice", alice.Secret, "alpha"},
		"bob":   {"bob", bob.Secret, "beta"},
	})
	pub := filepath.Join(t.TempDir(), "id_ed25519.pub")
	if err := os.WriteFile(pub, []byte(testKeyEd25519+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var kp map[string]any
	os_.json(&kp, "alice", "keypair", "create", "--public-key", pub, "k1")
	if kp["name"] != "k1" || kp["fingerprint"] != testMD5Ed25519 {
		t.Errorf("keypair create: %v", kp)
	}
	if out, err := os_.try("alice", "keypair", "create", "--public-key", pub, "k1"); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("keypair create of a name taken: %v\n%s", err, out)
	}
	var list []map[string]any
	os_.json(&list, "alice", "keypair", "list")
	if len(list) != 1 || list[0]["Name"] != "k1" || list[0]["Fingerprint"] != testMD5Ed25519 {
		t.Errorf("keypair list: %v", list)
	}
	os_.json(&kp, "alice", "keypair", "show", "k1")
	if kp["name"] != "k1" || kp["fingerprint"] != testMD5Ed25519 || kp["user_id"] != alice.ID {
		t.Errorf("keypair show: %v", kp)
	}
	if out := os_.run("alice", "keypair", "show", "--public-key", "k1"); strings.TrimSpace(out) != testKeyEd25519 {
		t.Errorf("keypair show --public-key: %q", out)
	}
	os_.json(&list, "bob", "keypair", "list")
	if len(list) != 0 {
		t.Errorf("bob lists alice's key pairs: %v", list)
	}
	if out, err := os_.try("bob", "keypair", "show", "k1"); err == nil || !strings.Contains(out, "k1") {
		t.Errorf("bob shows alice's key pair: %v\n%s", err, out)
	}

	// A server with the key pair: server show names it, and the guest's
	// seed carries the key.
	var srv map[string]any
	os_.json(&srv, "alice", "server", "create", "--image", "cirros", "--flavor", "m1.small", "--key-name", "k1", "--wait", "web1")
	id, _ := srv["id"].(string)
	if srv["status"] != "ACTIVE" || srv["key_name"] != "k1" {
		t.Fatalf("server create --key-name: %v", srv)
	}
	os_.json(&srv, "alice", "server", "show", "web1")
	if srv["key_name"] != "k1" {
		t.Errorf("server show: key_name %v", srv["key_name"])
	}
	vm, err := tc.client.VM(ctx, "web1")
	if err != nil || vm.ID != id || vm.KeyName != "k1" || vm.PublicKey != testKeyEd25519 {
		t.Fatalf("godwit's VM of the server: %+v, %v", vm, err)
	}
	host := 1
	if vm.Host == "host2" {
		host = 2
	}
	if !bytes.Contains(tc.seedOf(t, host, vm.ID), []byte(`public-keys: ["`+testKeyEd25519+`"]`)) {
		t.Errorf("the server's seed lacks its key")
	}
	if out, err := os_.try("bob", "server", "create", "--image", "cirros", "--flavor", "m1.small", "--key-name", "k1", "web2"); err == nil || !strings.Contains(out, "k1") {
		t.Errorf("bob's server with alice's key pair: %v\n%s", err, out)
	}

	// Deleted: gone from the list; the server keeps its key.
	os_.run("alice", "keypair", "delete", "k1")
	os_.json(&list, "alice", "keypair", "list")
	if len(list) != 0 {
		t.Errorf("keypair list after delete: %v", list)
	}
	os_.json(&srv, "alice", "server", "show", "web1")
	if srv["key_name"] != "k1" {
		t.Errorf("server show after its key pair's delete: key_name %v", srv["key_name"])
	}

	// Made without a public key: the private key, once.
	out := os_.run("alice", "keypair", "create", "k2")
	if !strings.HasPrefix(out, "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Errorf("keypair create without a public key printed:\n%s", out)
	}
	os_.run("alice", "keypair", "delete", "k2")
}

// keypairSchemas runs Tempest's key pairs client (which validates every
// reply with Nova's schema of its microversion) at the microversions
// where key pairs change: create (imported and generated), list, show
// and delete.
const keypairSchemas = `
import sys
from tempest.lib import auth
from tempest.lib.services.compute import base_compute_client, keypairs_client
url, user, password, project, ca, pub, uid = sys.argv[1:8]
creds = auth.KeystoneV3Credentials(username=user, password=password, project_name=project,
                                   user_domain_name="Default", project_domain_name="Default")
ap = auth.KeystoneV3AuthProvider(creds, url, ca_certs=ca)
kp = keypairs_client.KeyPairsClient(ap, "compute", "RegionOne", ca_certs=ca)
for v in [None, "2.2", "2.10", "2.35", "2.60"]:
    base_compute_client.COMPUTE_MICROVERSION = v
    at = v or "2.1"
    name = "k-" + at
    made = kp.create_keypair(name=name, public_key=pub)["keypair"]
    assert made["fingerprint"] and made["user_id"] == uid, made
    gen = kp.create_keypair(name=name + "-gen")["keypair"]
    assert gen["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----"), gen
    names = [k["keypair"]["name"] for k in kp.list_keypairs()["keypairs"]]
    assert name in names and name + "-gen" in names, names
    shown = kp.show_keypair(name)["keypair"]
    assert shown["public_key"] == made["public_key"], shown
    if v in ("2.10", "2.35", "2.60"):
        kp.show_keypair(name, user_id=uid)
    kp.delete_keypair(name)
    kp.delete_keypair(name + "-gen")
    print("ok", at)
`

// TestNovaKeypairSchemas checks the key pair replies against Nova's
// schemas with Tempest's client, at 2.1, 2.2 (type, 201 and 204), 2.10
// (user_id), 2.35 (paging) and 2.60.
func TestNovaKeypairSchemas(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs Tempest's clients")
	}
	if _, err := os.Stat("/usr/lib/python3/dist-packages/tempest/lib"); err != nil {
		t.Skip("Tempest is not installed (apt-get install tempest; make test installs it)")
	}
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 2, 1024)
	alice, err := tc.client.CreateToken(tc.ctx, api.CreateTokenRequest{Name: "alice", Project: "alpha", Role: api.RoleMember})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", "-c", keypairSchemas, tc.url+"/identity/v3", "alice", alice.Secret, "alpha",
		filepath.Join(tc.tlsDir, "ca.crt"), testKeyRSA, alice.ID)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "PYTHONWARNINGS=ignore"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("key pairs against Nova's schemas (Tempest's client): %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "ok "); n != 5 {
		t.Errorf("%d microversions checked; want 5:\n%s", n, out)
	}
}

// From 2.35 the list pages by name (limit, marker, keypairs_links);
// before, it does not; from 2.10 a member naming another user is
// refused, and an admin reads that user's key pairs.
func TestNovaKeypairPaging(t *testing.T) {
	t.Parallel()
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 2, 1024)
	ctx := context.Background()
	alice, aliceTok := tc.memberClient(t, "alice", "alpha")
	for _, n := range []string{"c", "a", "b"} {
		if _, err := alice.CreateKeyPair(ctx, api.CreateKeyPairRequest{Name: n, PublicKey: testKeyEd25519}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(token, version, query string) (int, []string, bool) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", tc.url+"/compute/v2.1/os-keypairs"+query, nil)
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("OpenStack-API-Version", "compute "+version)
		resp, err := tc.client.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Keypairs []struct {
				Keypair map[string]any `json:"keypair"`
			} `json:"keypairs"`
			Links []map[string]string `json:"keypairs_links"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		var names []string
		for _, k := range body.Keypairs {
			names = append(names, fmt.Sprint(k.Keypair["name"]))
		}
		return resp.StatusCode, names, len(body.Links) == 1 && strings.Contains(body.Links[0]["href"], "marker=b")
	}
	if code, names, next := list(aliceTok.Secret, "2.35", "?limit=2"); code != 200 || strings.Join(names, ",") != "a,b" || !next {
		t.Errorf("2.35 limit=2: %d %v next=%v; want a,b and a next link", code, names, next)
	}
	if code, names, next := list(aliceTok.Secret, "2.35", "?limit=2&marker=b"); code != 200 || strings.Join(names, ",") != "c" || next {
		t.Errorf("2.35 after b: %d %v next=%v; want c alone", code, names, next)
	}
	if code, names, _ := list(aliceTok.Secret, "2.34", "?limit=2"); code != 200 || len(names) != 3 {
		t.Errorf("2.34 limit=2: %d %v; want all three (no paging before 2.35)", code, names)
	}
	if code, _, _ := list(aliceTok.Secret, "2.35", "?marker=zz"); code != 400 {
		t.Errorf("an unknown marker: %d; want 400", code)
	}
	if code, _, _ := list(aliceTok.Secret, "2.10", "?user_id=ffffffffffff"); code != 403 {
		t.Errorf("a member naming another user: %d; want 403", code)
	}
	if code, names, _ := list(tc.adminToken, "2.10", "?user_id="+aliceTok.ID); code != 200 || len(names) != 3 {
		t.Errorf("an admin reading alice's: %d %v", code, names)
	}
	if code, names, _ := list(tc.adminToken, "2.10", ""); code != 200 || len(names) != 0 {
		t.Errorf("an admin's own: %d %v; want none", code, names)
	}
}

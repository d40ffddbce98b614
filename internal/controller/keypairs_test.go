package controller_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// Public keys made by ssh-keygen, with their MD5 fingerprints.
const (
	testKeyEd25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ alice@example"
	testKeyRSA     = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC6/e4ydndqFSq8/G5q8phLPwyA0NpcMO4q4zyFpNjt5EEGnZXdU3sasLWYdlkIDfMoSwpvaoHXXXtfCGpT8Jc9aJE79QurEyFub0Q1trUc/ZHrdwl2UBBngT5dwD4adMzzzs1bzeS/jWLCt6FoaUXKYEgOssfaX0qOfCf+HAAUADB4GbeYaXUKOwkwOXL02FSdyWBJwQFvPyorczw4dz9a3R3s4nV5qlWabMs8virJeVM2K2DsYXDnnVyFHBSwxuPIgmJEtHuFyjsg/q7FCna7RsvfTUmwHk5xW66x8/eJqyW0EOfkKmF1gIkIAJ4IF5qchyM3FOq8FjJyW90DUj1f bob@example"
	testMD5Ed25519 = "1e:96:2e:6e:5b:b4:d8:64:75:46:cb:7a:b1:ae:3e:f1"
	testMD5RSA     = "98:e9:5e:b5:6a:e1:24:6d:1f:5f:e7:61:d0:8c:df:be"
)

// Key pairs are their token's: a member imports ed25519 and RSA keys,
// garbage is refused with 400, a name twice with 409; another member
// neither sees, shows, deletes nor names them (403 for ?owner=); an
// admin lists every token's, shows and makes another's with owner; a
// create without a public key generates one and answers with its
// private key once.
func TestKeyPairs(t *testing.T) {
	t.Parallel()
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 2, 1024)
	ctx := context.Background()
	alice, aliceTok := tc.memberClient(t, "alice", "alpha")
	bob, bobTok := tc.memberClient(t, "bob", "beta")

	ed, err := alice.CreateKeyPair(ctx, api.CreateKeyPairRequest{Name: "laptop", PublicKey: "  " + testKeyEd25519 + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	if ed.PublicKey != testKeyEd25519 || ed.Fingerprint != testMD5Ed25519 || ed.Owner != aliceTok.ID || ed.Project != "alpha" ||
		ed.Type != api.KeyPairSSH || ed.PrivateKey != "" || !strings.HasPrefix(ed.FingerprintSHA256, "SHA256:") {
		t.Errorf("imported ed25519 key pair: %+v", ed)
	}
	rsa, err := alice.CreateKeyPair(ctx, api.CreateKeyPairRequest{Name: "desk top", PublicKey: testKeyRSA})
	if err != nil || rsa.Fingerprint != testMD5RSA {
		t.Fatalf("imported rsa key pair: %+v, %v", rsa, err)
	}
	for _, c := range []struct {
		req  api.CreateKeyPairRequest
		code string
		says string
	}{
		{api.CreateKeyPairRequest{Name: "junk", PublicKey: "not a key"}, api.CodeInvalid, "is not one godwit takes"},
		{api.CreateKeyPairRequest{Name: "junk", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9k"}, api.CodeInvalid, "not a valid key"},
		{api.CreateKeyPairRequest{Name: "junk", PublicKey: "ssh-rsa %%%"}, api.CodeInvalid, "not base64"},
		{api.CreateKeyPairRequest{Name: "a/b", PublicKey: testKeyEd25519}, api.CodeInvalid, "is invalid"},
		{api.CreateKeyPairRequest{Name: "laptop", PublicKey: testKeyRSA}, api.CodeConflict, "already exists"},
		{api.CreateKeyPairRequest{Name: "theirs", PublicKey: testKeyRSA, Owner: bobTok.ID}, api.CodeForbidden, "its own key pairs"},
	} {
		if _, err := alice.CreateKeyPair(ctx, c.req); !api.IsCode(err, c.code) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("create %+v: %v; want %s saying %q", c.req, err, c.code, c.says)
		}
	}
	if ks, err := alice.KeyPairs(ctx, ""); err != nil || len(ks) != 2 || ks[0].Name != "desk top" || ks[1].Name != "laptop" {
		t.Errorf("alice's key pairs: %+v, %v; want desk top and laptop, by name", ks, err)
	}

	// Bob has the same name for his own key; alice's stay hers.
	if _, err := bob.CreateKeyPair(ctx, api.CreateKeyPairRequest{Name: "laptop", PublicKey: testKeyRSA}); err != nil {
		t.Fatalf("bob's laptop beside alice's: %v", err)
	}
	if ks, err := bob.KeyPairs(ctx, ""); err != nil || len(ks) != 1 || ks[0].PublicKey != testKeyRSA {
		t.Errorf("bob's key pairs: %+v, %v; want his laptop only", ks, err)
	}
	if _, err := bob.KeyPair(ctx, "desk top", ""); !api.IsCode(err, api.CodeNotFound) {
		t.Errorf("bob shows alice's key pair: %v; want 404", err)
	}
	if err := bob.DeleteKeyPair(ctx, "desk top", ""); !api.IsCode(err, api.CodeNotFound) {
		t.Errorf("bob deletes alice's key pair: %v; want 404", err)
	}
	if _, err := bob.KeyPairs(ctx, aliceTok.ID); !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("bob lists alice's key pairs: %v; want 403", err)
	}
	if k, err := bob.KeyPair(ctx, "laptop", bobTok.ID); err != nil || k.PublicKey != testKeyRSA {
		t.Errorf("bob names himself: %+v, %v", k, err)
	}

	// The admin sees everyone's, and acts on alice's with owner.
	if ks, err := tc.client.KeyPairs(ctx, ""); err != nil || len(ks) != 3 {
		t.Errorf("every key pair: %+v, %v; want 3", ks, err)
	}
	if ks, err := tc.client.KeyPairs(ctx, aliceTok.ID); err != nil || len(ks) != 2 {
		t.Errorf("alice's key pairs, as the admin: %+v, %v", ks, err)
	}
	if k, err := tc.client.KeyPair(ctx, "laptop", aliceTok.ID); err != nil || k.PublicKey != testKeyEd25519 {
		t.Errorf("alice's laptop, as the admin: %+v, %v", k, err)
	}
	if _, err := tc.client.KeyPair(ctx, "laptop", ""); !api.IsCode(err, api.CodeNotFound) {
		t.Errorf("the admin's own laptop: %v; want 404 (it has none)", err)
	}
	made, err := tc.client.CreateKeyPair(ctx, api.CreateKeyPairRequest{Name: "given", PublicKey: testKeyEd25519, Owner: bobTok.ID})
	if err != nil || made.Owner != bobTok.ID || made.Project != "beta" {
		t.Errorf("the admin makes bob a key pair: %+v, %v", made, err)
	}
	if _, err := tc.client.CreateKeyPair(ctx, api.CreateKeyPairRequest{Name: "x", PublicKey: testKeyEd25519, Owner: "ffffffffffff"}); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("a key pair for no token: %v; want 400", err)
	}

	// Generated: the private key once, in OpenSSH's format.
	gen, err := alice.CreateKeyPair(ctx, api.CreateKeyPairRequest{Name: "made"})
	if err != nil || !strings.HasPrefix(gen.PrivateKey, "-----BEGIN OPENSSH PRIVATE KEY-----\n") || !strings.HasPrefix(gen.PublicKey, "ssh-ed25519 ") {
		t.Fatalf("generated key pair: %+v, %v", gen, err)
	}
	if k, err := alice.KeyPair(ctx, "made", ""); err != nil || k.PublicKey != gen.PublicKey {
		t.Errorf("generated key pair shown: %+v, %v", k, err)
	}

	if err := alice.DeleteKeyPair(ctx, "laptop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.KeyPair(ctx, "laptop", ""); !api.IsCode(err, api.CodeNotFound) {
		t.Errorf("after delete: %v; want 404", err)
	}
	if k, err := bob.KeyPair(ctx, "laptop", ""); err != nil || k.Owner != bobTok.ID {
		t.Errorf("bob's laptop after alice deleted hers: %+v, %v", k, err)
	}
}

// seedOf is the NoCloud seed host n wrote for a VM.
func (tc *testCluster) seedOf(t *testing.T, host int, vmID string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tc.agents[host-1].cfg.StateDir, "seeds", vmID+".iso"))
	if err != nil {
		t.Fatalf("host%d has no seed for vm %s: %v", host, vmID, err)
	}
	return b
}

// A VM created with a key pair records its name and key, and its guest
// gets the key in the NoCloud seed's meta-data (public-keys) on every
// host it runs on; another member's key pair, or none, is refused with
// 400; deleting the key pair changes no VM.
func TestVMKeyPair(t *testing.T) {
	t.Parallel()
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 2, 1024, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	alice, _ := tc.memberClient(t, "alice", "alpha")
	bob, _ := tc.memberClient(t, "bob", "beta")
	if _, err := alice.CreateKeyPair(ctx, api.CreateKeyPairRequest{Name: "k1", PublicKey: testKeyRSA}); err != nil {
		t.Fatal(err)
	}
	req := api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}, KeyName: "k1"}
	if _, err := bob.CreateVM(ctx, req); !api.IsCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), `key pair "k1" not found`) {
		t.Errorf("bob's VM with alice's key pair: %v; want 400", err)
	}
	nope := req
	nope.KeyName = "nope"
	if _, err := alice.CreateVM(ctx, nope); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("a VM with no such key pair: %v; want 400", err)
	}
	vm, err := alice.CreateVM(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if vm.KeyName != "k1" || vm.PublicKey != testKeyRSA {
		t.Errorf("vm records key %q %q", vm.KeyName, vm.PublicKey)
	}
	want := []byte(`public-keys: ["` + testKeyRSA + `"]` + "\n")
	if !bytes.Contains(tc.seedOf(t, 1, vm.ID), want) {
		t.Errorf("host1's seed for the vm lacks %s", want)
	}

	// Deleting the key pair leaves the VM as it was, and a migration's
	// destination gives the guest the same key.
	if err := alice.DeleteKeyPair(ctx, "k1", ""); err != nil {
		t.Fatal(err)
	}
	m, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, To: "host2"})
	if err != nil {
		t.Fatal(err)
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
		t.Fatalf("migration %s: %s", m.State, m.Reason)
	}
	if !bytes.Contains(tc.seedOf(t, 2, vm.ID), want) {
		t.Errorf("host2's seed for the vm lacks %s", want)
	}
	if v, err := alice.VM(ctx, "web"); err != nil || v.KeyName != "k1" || v.PublicKey != testKeyRSA {
		t.Errorf("vm after its key pair's delete: %q %q, %v", v.KeyName, v.PublicKey, err)
	}
	// A VM without a key has no public-keys in its seed.
	if _, err := tc.client.CreateNetwork(ctx, api.CreateNetworkRequest{Name: "lan", Subnet: "10.99.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	plain, err := alice.CreateVM(ctx, api.CreateVMRequest{Name: "plain", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}, Networks: []api.NICRequest{{Network: "lan"}}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(tc.seedOf(t, 1, plain.ID), []byte("public-keys")) {
		t.Error("a VM without a key pair has public-keys in its seed")
	}
}

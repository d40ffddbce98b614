package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

const testPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ alice@example"

func testKeyPair() api.KeyPair {
	return api.KeyPair{Name: "laptop", Owner: "0123456789ab", Project: "alpha", PublicKey: testPublicKey,
		Fingerprint: "1e:96:2e:6e:5b:b4:d8:64:75:46:cb:7a:b1:ae:3e:f1", FingerprintSHA256: "SHA256:/wbZ2fwG6Dl10p2XIUeFbAfRN4nLScxVo88DX7DuUQA",
		Type: api.KeyPairSSH, CreatedAt: created}
}

// keyPairRoutes answers the key pair endpoints with testKeyPair; a
// create without a public key answers with a private key.
func keyPairRoutes(record func(string, http.HandlerFunc)) {
	record("GET /v1/keypairs", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]api.KeyPair{testKeyPair()})
	})
	record("GET /v1/keypairs/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "laptop" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.Error{Code: api.CodeNotFound, Message: `key pair "` + r.PathValue("name") + `" not found; list key pairs with: godwit keypair list`})
			return
		}
		json.NewEncoder(w).Encode(testKeyPair())
	})
	record("POST /v1/keypairs", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateKeyPairRequest
		json.NewDecoder(r.Body).Decode(&req)
		k := api.CreatedKeyPair{KeyPair: testKeyPair()}
		k.Name = req.Name
		if req.PublicKey == "" {
			k.PrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(k)
	})
	record("DELETE /v1/keypairs/{name}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

func TestKeyPairCommands(t *testing.T) {
	srv := newFakeController(t)
	dir := t.TempDir()
	pub := filepath.Join(dir, "id.pub")
	if err := os.WriteFile(pub, []byte(testPublicKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, srv.Server, "keypair", "create", "laptop", "--public-key-file", pub)
	if !strings.Contains(out, "Fingerprint: 1e:96:2e:") || !strings.Contains(out, "Public key:  "+testPublicKey+"\n") {
		t.Errorf("keypair create printed:\n%s", out)
	}
	var req api.CreateKeyPairRequest
	json.Unmarshal(srv.body("POST /v1/keypairs"), &req)
	if req.Name != "laptop" || req.PublicKey != testPublicKey+"\n" || req.Owner != "" {
		t.Errorf("keypair create sent %+v", req)
	}

	// Generated: the private key alone on stdout, or in a new file.
	out, errOut, code := run(t, srv.Server, "keypair", "create", "gen")
	if code != 0 || !strings.HasPrefix(out, "-----BEGIN OPENSSH PRIVATE KEY-----\n") || !strings.Contains(errOut, "keeps no copy") {
		t.Errorf("keypair create without a public key: exit %d\n%s\n%s", code, out, errOut)
	}
	priv := filepath.Join(dir, "gen.key")
	mustRun(t, srv.Server, "keypair", "create", "gen", "--private-key-file", priv)
	if b, err := os.ReadFile(priv); err != nil || !strings.HasPrefix(string(b), "-----BEGIN OPENSSH") {
		t.Errorf("private key file: %q, %v", b, err)
	}
	if fi, _ := os.Stat(priv); fi.Mode().Perm() != 0o600 {
		t.Errorf("private key file mode %v", fi.Mode().Perm())
	}
	if _, errOut, code := run(t, srv.Server, "keypair", "create", "gen", "--private-key-file", priv); code != 2 || !strings.Contains(errOut, "exists") {
		t.Errorf("over an existing private key file: exit %d, %q", code, errOut)
	}
	if _, errOut, code := run(t, srv.Server, "keypair", "create", "x", "--public-key-file", pub, "--private-key-file", priv+"2"); code != 2 || !strings.Contains(errOut, "generated") {
		t.Errorf("both files: exit %d, %q", code, errOut)
	}

	if out := mustRun(t, srv.Server, "keypair", "list"); !strings.HasPrefix(out, "NAME    OWNER") || !strings.Contains(out, "laptop  0123456789ab  alpha") {
		t.Errorf("keypair list:\n%s", out)
	}
	mustRun(t, srv.Server, "keypair", "list", "--owner", "0123456789ab")
	if out := mustRun(t, srv.Server, "keypair", "show", "laptop", "-o", "json"); !strings.Contains(out, `"fingerprint_sha256": "SHA256:`) {
		t.Errorf("keypair show -o json:\n%s", out)
	}
	if _, errOut, code := run(t, srv.Server, "keypair", "show", "nope"); code != 1 || !strings.Contains(errOut, "godwit keypair list") {
		t.Errorf("keypair show of an unknown key pair: exit %d, %q", code, errOut)
	}
	if out := mustRun(t, srv.Server, "keypair", "delete", "laptop"); out != "key pair laptop deleted\n" {
		t.Errorf("keypair delete printed %q", out)
	}

	// vm create --key-name sends it; vm show prints it.
	mustRun(t, srv.Server, "vm", "create", "web-9", "--image", "testguest", "--key-name", "laptop")
	var vreq api.CreateVMRequest
	json.Unmarshal(srv.body("POST /v1/vms"), &vreq)
	if vreq.KeyName != "laptop" {
		t.Errorf("vm create --key-name sent %s", srv.body("POST /v1/vms"))
	}
	v := testVMs()[0]
	v.KeyName = "laptop"
	var b strings.Builder
	a := app{out: &b}
	if err := a.printVM(v); err != nil || !strings.Contains(b.String(), "Key pair:      laptop\n") {
		t.Errorf("vm show of a VM with a key pair:\n%s", b.String())
	}
}

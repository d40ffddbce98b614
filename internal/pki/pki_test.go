package pki

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func identity(t *testing.T, ca *CA, s Subject) *Identity {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(s, &k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &Identity{CA: ca.Cert, Cert: c, Key: k}
}

// serve runs a TLS server with cfg that answers with the client's
// certificate name, and returns its URL.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			w.Write([]byte(r.TLS.PeerCertificates[0].Subject.CommonName))
		}
	}))
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(url string, cfg *tls.Config) (string, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 256)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return b.String(), nil
}

// An agent answers the controller and refuses a host, another cluster's
// controller and a client without a certificate; the controller is
// checked by role, and a host by name.
func TestMutualTLS(t *testing.T) {
	ca, err := NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("other")
	ctrl := identity(t, ca, Subject{Name: "controller", Role: RoleController, Addresses: []string{"127.0.0.1"}})
	host1 := identity(t, ca, Subject{Name: "host1", Role: RoleHost, Addresses: []string{"127.0.0.1"}})
	host2 := identity(t, ca, Subject{Name: "host2", Role: RoleHost})
	intruder := identity(t, other, Subject{Name: "controller", Role: RoleController})

	agent := serve(t, host1.ServerConfig(Peer{Roles: []string{RoleController}}, true))
	if name, err := get(agent, ctrl.ClientConfig(Peer{Roles: []string{RoleHost}, Name: "host1"})); err != nil || name != "controller" {
		t.Errorf("controller to host1: %q, %v", name, err)
	}
	if _, err := get(agent, host2.ClientConfig(Peer{Roles: []string{RoleHost}, Name: "host1"})); err == nil {
		t.Error("host1's agent answered host2, a host and not the controller")
	}
	if _, err := get(agent, intruder.ClientConfig(Peer{Roles: []string{RoleHost}})); err == nil {
		t.Error("host1's agent answered another cluster's controller")
	}
	if _, err := get(agent, &tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Error("host1's agent answered a client without a certificate")
	}
	if _, err := get(agent, ctrl.ClientConfig(Peer{Roles: []string{RoleHost}, Name: "host2"})); err == nil {
		t.Error("the controller accepted host1 where it expected host2")
	}

	// The controller's server takes users without certificates, and
	// hosts with; a certificate of another CA is refused.
	api := serve(t, ctrl.ServerConfig(Peer{Roles: []string{RoleHost}}, false))
	if name, err := get(api, host2.ClientConfig(Peer{Roles: []string{RoleController}})); err != nil || name != "host2" {
		t.Errorf("host2 to the controller: %q, %v", name, err)
	}
	user := &tls.Config{RootCAs: ctrl.roots(), ServerName: "127.0.0.1"}
	if _, err := get(api, user); err != nil {
		t.Errorf("a user trusting the CA: %v", err)
	}
	stray := identity(t, other, Subject{Name: "host9", Role: RoleHost})
	if _, err := get(api, stray.ClientConfig(Peer{Roles: []string{RoleController}})); err == nil {
		t.Error("the controller accepted a host certificate of another CA")
	}

	// A joining host pins the CA by the token's fingerprint.
	if _, err := get(api, PinnedConfig(Fingerprint(ca.Cert))); err != nil {
		t.Errorf("pinned to the right CA: %v", err)
	}
	if _, err := get(api, PinnedConfig(Fingerprint(other.Cert))); err == nil || !strings.Contains(err.Error(), "not the one the join token names") {
		t.Errorf("pinned to another CA: %v; want refused", err)
	}
}

func TestJoinToken(t *testing.T) {
	tok := JoinToken{Controller: "https://10.0.0.1:7700", CA: "sha256:00ff", Host: "host1", Secret: NewSecret()}
	got, err := ParseJoinToken(" " + tok.String() + "\n")
	if err != nil || got != tok {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "gwjoin1.!!", tok.String()[len(joinPrefix):], JoinToken{Host: "h"}.String()} {
		if _, err := ParseJoinToken(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if !SameHash(HashSecret(tok.Secret), HashSecret(tok.Secret)) || SameHash(HashSecret(tok.Secret), HashSecret("x")) {
		t.Error("HashSecret/SameHash disagree")
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	ca, _ := NewCA("test")
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadCA(dir)
	if err != nil || Fingerprint(back.Cert) != Fingerprint(ca.Cert) {
		t.Fatalf("load ca: %v", err)
	}
	if _, ok, err := LoadIdentity(t.TempDir()); ok || err != nil {
		t.Errorf("an empty directory holds an identity: %v %v", ok, err)
	}
	id := identity(t, back, Subject{Name: "host1", Role: RoleHost})
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, ok, err := LoadIdentity(dir)
	if !ok || err != nil || got.Cert.Subject.CommonName != "host1" {
		t.Fatalf("load identity: %v %v", ok, err)
	}
	if name, err := HostName(got.Cert); err != nil || name != "host1" {
		t.Errorf("HostName = %q, %v", name, err)
	}
}

// A host joins once with its token and gets a certificate for its name;
// the token does not work twice, nor for another host, and a revoked
// host's certificate is refused, across a controller restart.
func TestAuthorityJoin(t *testing.T) {
	dir := t.TempDir()
	a, err := Init(dir, "test", "controller", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, "test", "controller", nil); err == nil {
		t.Error("Init made a second CA over the first")
	}
	tok, err := a.AddHost("host1", "https://127.0.0.1:7400")
	if err != nil {
		t.Fatal(err)
	}
	id, csr, err := Request("host1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Join("host2", tok.Secret, csr); err == nil {
		t.Error("host1's token let host2 join")
	}
	if _, _, err := a.Join("host1", "wrong", csr); err == nil {
		t.Error("a wrong secret joined")
	}
	cert, ca, err := a.Join("host1", tok.Secret, csr)
	if err != nil {
		t.Fatal(err)
	}
	if err := id.Complete(tok, cert, ca); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Join("host1", tok.Secret, csr); err == nil {
		t.Error("a join token worked twice")
	}
	other, _ := NewCA("other")
	if err := id.Complete(JoinToken{Host: "host1", CA: Fingerprint(other.Cert)}, cert, ca); err == nil {
		t.Error("Complete took a CA the token does not name")
	}

	b, err := OpenAuthority(dir) // a controller restart
	if err != nil {
		t.Fatal(err)
	}
	if b.Revoked(id.Cert) {
		t.Fatal("revoked before Revoke")
	}
	if n, err := b.Revoke("host1"); err != nil || n != 1 {
		t.Fatalf("revoke: %d, %v", n, err)
	}
	c, _ := OpenAuthority(dir)
	if !c.Revoked(id.Cert) {
		t.Error("the revocation did not outlive a restart")
	}
	srv := serve(t, c.Identity().ServerConfig(Peer{Roles: []string{RoleHost}, Revoked: c.Revoked}, false))
	if _, err := get(srv, id.ClientConfig(Peer{Roles: []string{RoleController}})); err == nil {
		t.Error("the controller accepted a revoked host certificate")
	}
}

// A renewed controller certificate (new key, new address) is accepted by
// a host that trusts the CA, as the old one was; the files hold it.
func TestRenewController(t *testing.T) {
	dir := t.TempDir()
	a, err := Init(dir, "test", "ctl", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	old := a.Identity().Cert
	if err := a.RenewController("ctl", []string{"127.0.0.1", "10.9.8.7"}); err != nil {
		t.Fatal(err)
	}
	id, ok, err := LoadIdentity(dir)
	if err != nil || !ok || id.Cert.Equal(old) || id.Cert.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatalf("renewed identity: %v %v; want a new certificate", ok, err)
	}
	if len(id.Cert.IPAddresses) != 2 || id.Cert.IPAddresses[1].String() != "10.9.8.7" {
		t.Fatalf("renewed certificate's addresses = %v", id.Cert.IPAddresses)
	}
	host := identity(t, &CA{Cert: a.ca.Cert, Key: a.ca.Key}, Subject{Name: "host1", Role: RoleHost})
	url := serve(t, host.ServerConfig(Peer{Roles: []string{RoleController}}, true))
	if got, err := get(url, id.ClientConfig(Peer{Roles: []string{RoleHost}, Name: "host1"})); err != nil || got != "ctl" {
		t.Fatalf("a host answers the renewed controller: %q, %v", got, err)
	}
}

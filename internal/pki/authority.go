package pki

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Authority is the controller's side of the CA: it hands out join tokens,
// issues a host its certificate for one, and revokes hosts. What it
// records (the tokens' hashes, the certificates issued, the revoked) is
// kept in its directory beside the CA, written before it answers.
type Authority struct {
	dir string
	ca  *CA
	id  *Identity // the controller's own

	mu    sync.Mutex
	state authorityState
}

type authorityState struct {
	Joins   map[string]pendingJoin `json:"joins"`   // by host name
	Issued  map[string][]string    `json:"issued"`  // serials (hex) by host name
	Revoked map[string]string      `json:"revoked"` // host name by serial (hex)
}

type pendingJoin struct {
	SecretHash string    `json:"secret_hash"`
	Expires    time.Time `json:"expires"`
}

const authorityFile = "authority.json"

// JoinTTL is how long a join token is good for.
const JoinTTL = 24 * time.Hour

// Init makes a cluster's PKI in dir: the CA and the controller's
// certificate for name and addresses. It refuses a dir that has one.
func Init(dir, cluster, name string, addresses []string) (*Authority, error) {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, fmt.Errorf("%s already holds a cluster CA; remove it to start a new cluster (every host must then join again)", dir)
	}
	ca, err := NewCA(cluster)
	if err != nil {
		return nil, err
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(Subject{Name: name, Role: RoleController, Addresses: addresses}, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	id := &Identity{CA: ca.Cert, Cert: cert, Key: key}
	if err := ca.Save(dir); err != nil {
		return nil, err
	}
	if err := id.Save(dir); err != nil {
		return nil, err
	}
	return OpenAuthority(dir)
}

// OpenAuthority reads the PKI that Init made; ok is false when dir holds
// none (the cluster runs without TLS).
func OpenAuthority(dir string) (*Authority, error) {
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, err
	}
	id, ok, err := LoadIdentity(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s holds a CA but no controller certificate (%s)", dir, CertFile)
	}
	a := &Authority{dir: dir, ca: ca, id: id}
	b, err := os.ReadFile(filepath.Join(dir, authorityFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, &a.state); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, authorityFile), err)
		}
	}
	if a.state.Joins == nil {
		a.state.Joins = map[string]pendingJoin{}
	}
	if a.state.Issued == nil {
		a.state.Issued = map[string][]string{}
	}
	if a.state.Revoked == nil {
		a.state.Revoked = map[string]string{}
	}
	return a, nil
}

// RenewController issues the controller a new key and certificate for
// name and addresses (new addresses, or an old certificate's end), in
// place: agents and users check the controller by CA and role, so they
// accept it without a change. The controller uses it once restarted.
func (a *Authority) RenewController(name string, addresses []string) error {
	key, err := NewKey()
	if err != nil {
		return err
	}
	cert, err := a.ca.Issue(Subject{Name: name, Role: RoleController, Addresses: addresses}, &key.PublicKey)
	if err != nil {
		return err
	}
	id := &Identity{CA: a.ca.Cert, Cert: cert, Key: key}
	if err := id.Save(a.dir); err != nil {
		return err
	}
	a.mu.Lock()
	a.id = id
	a.mu.Unlock()
	return nil
}

// Identity is the controller's own certificate.
func (a *Authority) Identity() *Identity { return a.id }

// save writes the state (a.mu held).
func (a *Authority) save() error {
	b, err := json.MarshalIndent(a.state, "", "  ")
	if err != nil {
		return err
	}
	return writeFiles(a.dir, map[string][]byte{authorityFile: b})
}

// AddHost makes a one-time join token for host, replacing any earlier
// one; controller is the URL the host reaches the controller at.
func (a *Authority) AddHost(host, controller string) (JoinToken, error) {
	tok := JoinToken{Controller: controller, CA: Fingerprint(a.ca.Cert), Host: host, Secret: NewSecret()}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.Joins[host] = pendingJoin{SecretHash: HashSecret(tok.Secret), Expires: time.Now().Add(JoinTTL).UTC()}
	if err := a.save(); err != nil {
		return JoinToken{}, err
	}
	return tok, nil
}

// ErrJoinRefused is a join with no valid token for the host.
var ErrJoinRefused = errors.New("join refused")

// Join issues host its certificate for the key in csrPEM, once per
// token. It returns the certificate and the CA's, in PEM.
func (a *Authority) Join(host, secret string, csrPEM []byte) (cert, ca []byte, err error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, nil, errors.New("the join request holds no PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	j, ok := a.state.Joins[host]
	if !ok || !SameHash(j.SecretHash, HashSecret(secret)) {
		return nil, nil, fmt.Errorf("%w: no join token for host %q matches; make one with `godwit host add %s`", ErrJoinRefused, host, host)
	}
	if time.Now().After(j.Expires) {
		return nil, nil, fmt.Errorf("%w: the join token for host %q expired at %s; make a new one with `godwit host add %s`",
			ErrJoinRefused, host, j.Expires.Format(time.RFC3339), host)
	}
	c, err := a.ca.Issue(Subject{Name: host, Role: RoleHost}, csr.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	delete(a.state.Joins, host)
	a.state.Issued[host] = append(a.state.Issued[host], c.SerialNumber.Text(16))
	if err := a.save(); err != nil {
		return nil, nil, err
	}
	return CertPEM(c), CertPEM(a.ca.Cert), nil
}

// IssueHost issues host a certificate directly, without a token: for
// godwit up, which holds the CA and makes its hosts itself.
func (a *Authority) IssueHost(host string) (*Identity, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	c, err := a.ca.Issue(Subject{Name: host, Role: RoleHost}, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.Issued[host] = append(a.state.Issued[host], c.SerialNumber.Text(16))
	if err := a.save(); err != nil {
		return nil, err
	}
	return &Identity{CA: a.ca.Cert, Cert: c, Key: key}, nil
}

// Revoke revokes every certificate issued to host: the controller refuses
// them from now on. It reports how many there were.
func (a *Authority) Revoke(host string) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.state.Issued[host] {
		if _, done := a.state.Revoked[s]; !done {
			a.state.Revoked[s] = host
			n++
		}
	}
	delete(a.state.Joins, host)
	return n, a.save()
}

// Revoked reports whether a certificate was revoked.
func (a *Authority) Revoked(c *x509.Certificate) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, r := a.state.Revoked[c.SerialNumber.Text(16)]
	return r
}

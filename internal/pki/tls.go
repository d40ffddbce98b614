package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Peer says which certificates a TLS end accepts from the other end:
// issued by the cluster's CA, for one of Roles, and, when Name is set,
// for that name. Host names, not addresses, are checked: a host is
// reached at whatever address it registered, across NAT or namespaces.
type Peer struct {
	Roles []string
	Name  string
	// Revoked, when set, refuses certificates the controller revoked.
	Revoked func(*x509.Certificate) bool
}

func (p Peer) check(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the peer's certificate is not from this cluster's CA: %w", err)
	}
	role := Role(leaf)
	ok := false
	for _, r := range p.Roles {
		ok = ok || r == role
	}
	if !ok {
		return fmt.Errorf("the peer's certificate %q is for %q; want %s", leaf.Subject.CommonName, role, strings.Join(p.Roles, " or "))
	}
	if p.Revoked != nil && p.Revoked(leaf) {
		return fmt.Errorf("the certificate of %q was revoked; the host must join again (godwit host add %s)", leaf.Subject.CommonName, leaf.Subject.CommonName)
	}
	if p.Name != "" && leaf.Subject.CommonName != p.Name {
		return fmt.Errorf("the peer's certificate is for %q; want %q", leaf.Subject.CommonName, p.Name)
	}
	return nil
}

func (id *Identity) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(id.CA)
	return p
}

func (id *Identity) certificate() tls.Certificate {
	// The CA goes with the leaf: a joining host pins it by fingerprint.
	return tls.Certificate{Certificate: [][]byte{id.Cert.Raw, id.CA.Raw}, PrivateKey: id.Key, Leaf: id.Cert}
}

// ServerConfig is a TLS server's configuration. With require, every
// client must present a certificate that peer accepts; without, a client
// may come without one (a user with a token), but one it presents must
// verify, and handlers read it from the request (ClientRole).
func (id *Identity) ServerConfig(peer Peer, require bool) *tls.Config {
	roots := id.roots()
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.certificate()},
		ClientCAs:    roots,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
	if require {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 && !require {
			return nil
		}
		return peer.check(cs, roots)
	}
	return cfg
}

// ClientConfig is a TLS client's configuration: it presents this
// identity and accepts only a server that peer accepts.
func (id *Identity) ClientConfig(peer Peer) *tls.Config {
	roots := id.roots()
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.certificate()},
		// The chain and the name are checked below, against this
		// cluster's CA and the peer's role, not against the address.
		InsecureSkipVerify: true,
		VerifyConnection:   func(cs tls.ConnectionState) error { return peer.check(cs, roots) },
	}
}

// PinnedConfig is the client configuration of a host that joins: it has
// no CA yet, only the fingerprint its join token carries, and accepts a
// controller whose chain holds a CA of that fingerprint.
func PinnedConfig(fingerprint string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) < 2 {
				return errors.New("the controller sent no CA with its certificate")
			}
			for _, c := range cs.PeerCertificates[1:] {
				if subtle.ConstantTimeCompare([]byte(Fingerprint(c)), []byte(fingerprint)) == 1 {
					roots := x509.NewCertPool()
					roots.AddCert(c)
					return Peer{Roles: []string{RoleController}}.check(cs, roots)
				}
			}
			return fmt.Errorf("the controller's CA is not the one the join token names (%s): a wrong address, or someone in between", fingerprint)
		},
	}
}

// JoinToken is what `godwit host add NAME` prints and `godwit agent
// --join` takes: where the controller is, the fingerprint of its CA, and
// a one-time secret for one host name.
type JoinToken struct {
	Controller string `json:"controller"` // base URL
	CA         string `json:"ca"`         // Fingerprint of the CA
	Host       string `json:"host"`
	Secret     string `json:"secret"`
}

const joinPrefix = "gwjoin1."

func (t JoinToken) String() string {
	b, _ := json.Marshal(t)
	return joinPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseJoinToken reads a token String made.
func ParseJoinToken(s string) (JoinToken, error) {
	var t JoinToken
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), joinPrefix))
	if !strings.HasPrefix(strings.TrimSpace(s), joinPrefix) || err != nil || json.Unmarshal(b, &t) != nil {
		return t, errors.New("not a join token; `godwit host add NAME` prints one")
	}
	if t.Controller == "" || !strings.HasPrefix(t.CA, "sha256:") || t.Host == "" || t.Secret == "" {
		return t, errors.New("the join token lacks a part; make a new one with `godwit host add NAME`")
	}
	return t, nil
}

// NewSecret is a random secret for a token.
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is what is stored of a secret: its SHA-256 (the secrets are
// random and long, so no slow hash is needed).
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// SameHash compares two hashes in constant time.
func SameHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// LoadTrust is TrustConfig for the CA certificate in the PEM file path.
func LoadTrust(path string) (*tls.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ca, err := ParseCert(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return TrustConfig(ca), nil
}

// TrustConfig is the configuration of a user's client: no certificate of
// its own, and only the cluster's controller accepted, checked by CA and
// role rather than by address (a controller is reached by whatever
// address a user has for it).
func TrustConfig(ca *x509.Certificate) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // checked below, against the CA and the role
		VerifyConnection:   func(cs tls.ConnectionState) error { return Peer{Roles: []string{RoleController}}.check(cs, roots) },
	}
}

// Package pki is a godwit cluster's certificate authority: the CA made by
// godwit init, the certificates it issues to the controller and to each
// host, the one-time join tokens that let a new host get its certificate
// without a copied secret, and the TLS configurations both ends use.
//
// Every certificate names its role in its subject's organizational unit
// (RoleController or RoleHost), and a host's certificate its host name in
// the common name: the controller binds a heartbeat to that name, and an
// agent answers only a peer whose certificate says controller.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Roles a certificate is issued for.
const (
	RoleController = "godwit-controller"
	RoleHost       = "godwit-host"
)

// Lifetimes. A host's certificate is renewed by joining again.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	certLifetime = 2 * 365 * 24 * time.Hour
	clockSkew    = 5 * time.Minute // NotBefore is set back by this much
)

// Files of a PKI directory. The CA's key lives only on the controller.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	CertFile   = "tls.crt"
	KeyFile    = "tls.key"
)

// CA is a cluster's certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a CA named for the cluster.
func NewCA(cluster string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "godwit cluster " + cluster + " CA", Organization: []string{"godwit"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Subject is who a certificate is for.
type Subject struct {
	Name string // host name, or the controller's
	Role string // RoleController or RoleHost
	// Addresses the peer reaches it on: IP literals and DNS names.
	Addresses []string
}

// Issue signs a certificate for pub, usable as TLS server and client.
func (ca *CA) Issue(s Subject, pub crypto.PublicKey) (*x509.Certificate, error) {
	if s.Role != RoleController && s.Role != RoleHost {
		return nil, fmt.Errorf("unknown certificate role %q", s.Role)
	}
	if s.Name == "" {
		return nil, errors.New("a certificate needs a name")
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.Name, Organization: []string{"godwit"}, OrganizationalUnit: []string{s.Role}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(certLifetime),
		// Key encipherment too: QEMU refuses a server certificate
		// without it (encrypted migration streams), whatever the key type.
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{s.Name},
	}
	for _, a := range s.Addresses {
		if ip := net.ParseIP(a); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if a != "" && a != s.Name {
			tmpl.DNSNames = append(tmpl.DNSNames, a)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s: %w", s.Name, err)
	}
	return x509.ParseCertificate(der)
}

// Role is the role a certificate was issued for, or "".
func Role(c *x509.Certificate) string {
	for _, ou := range c.Subject.OrganizationalUnit {
		if ou == RoleController || ou == RoleHost {
			return ou
		}
	}
	return ""
}

// Fingerprint is a certificate's SHA-256, as "sha256:" and hex: what a
// join token carries to pin the CA.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NewKey makes a key pair for a certificate.
func NewKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// CertPEM and KeyPEM encode for files.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCert reads one PEM certificate.
func ParseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// ParseKey reads one PEM PKCS#8 private key.
func ParseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("the private key cannot sign")
	}
	return s, nil
}

// Save writes the CA's certificate and key into dir (key mode 0600).
func (ca *CA) Save(dir string) error {
	kp, err := KeyPEM(ca.Key)
	if err != nil {
		return err
	}
	return writeFiles(dir, map[string][]byte{CACertFile: CertPEM(ca.Cert), CAKeyFile: kp})
}

// LoadCA reads the CA that Save wrote.
func LoadCA(dir string) (*CA, error) {
	cb, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	c, err := ParseCert(cb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CACertFile, err)
	}
	k, err := ParseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CAKeyFile, err)
	}
	return &CA{Cert: c, Key: k}, nil
}

// Identity is what one end of a connection holds: the CA certificate it
// trusts, and its own certificate and key.
type Identity struct {
	CA   *x509.Certificate
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Save writes the identity into dir: ca.crt, tls.crt, tls.key (0600).
func (id *Identity) Save(dir string) error {
	kp, err := KeyPEM(id.Key)
	if err != nil {
		return err
	}
	return writeFiles(dir, map[string][]byte{CACertFile: CertPEM(id.CA), CertFile: CertPEM(id.Cert), KeyFile: kp})
}

// LoadIdentity reads what Identity.Save wrote; ok is false when dir holds
// none (the cluster runs without TLS).
func LoadIdentity(dir string) (id *Identity, ok bool, err error) {
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	cb, err := read(CertFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	id = &Identity{}
	if id.Cert, err = ParseCert(cb); err != nil {
		return nil, false, fmt.Errorf("%s: %w", filepath.Join(dir, CertFile), err)
	}
	b, err := read(CACertFile)
	if err != nil {
		return nil, false, err
	}
	if id.CA, err = ParseCert(b); err != nil {
		return nil, false, fmt.Errorf("%s: %w", filepath.Join(dir, CACertFile), err)
	}
	if b, err = read(KeyFile); err != nil {
		return nil, false, err
	}
	if id.Key, err = ParseKey(b); err != nil {
		return nil, false, fmt.Errorf("%s: %w", filepath.Join(dir, KeyFile), err)
	}
	return id, true, nil
}

// writeFiles writes each file whole (a temporary file renamed), private
// to its owner.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return err
		}
	}
	return nil
}

// HostName checks that a certificate is a host's, and returns its name.
func HostName(c *x509.Certificate) (string, error) {
	if Role(c) != RoleHost {
		return "", fmt.Errorf("certificate %q is not a host's (%s)", c.Subject.CommonName, strings.Join(c.Subject.OrganizationalUnit, ","))
	}
	return c.Subject.CommonName, nil
}

// QEMU's x509 credential file names (its tls-creds-x509 object reads a
// directory of them). A host's certificate serves as both server and
// client: it carries both usages.
var qemuFiles = struct{ ca, serverCert, serverKey, clientCert, clientKey string }{
	"ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem"}

// SaveQEMU writes the identity into dir the way QEMU's tls-creds-x509
// object reads it, for encrypted migration streams.
func (id *Identity) SaveQEMU(dir string) error {
	kp, err := KeyPEM(id.Key)
	if err != nil {
		return err
	}
	cp := CertPEM(id.Cert)
	return writeFiles(dir, map[string][]byte{qemuFiles.ca: CertPEM(id.CA), qemuFiles.serverCert: cp, qemuFiles.serverKey: kp,
		qemuFiles.clientCert: cp, qemuFiles.clientKey: kp})
}

package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
)

// Request is a joining host's key and the PEM certificate request it
// sends with its token.
func Request(host string) (*Identity, []byte, error) {
	key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: host}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	return &Identity{Key: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// Complete fills id with the certificate and CA the controller answered,
// checking that the CA is the one the token names and that the
// certificate is for host, from that CA, for id's key.
func (id *Identity) Complete(tok JoinToken, certPEM, caPEM []byte) error {
	ca, err := ParseCert(caPEM)
	if err != nil {
		return fmt.Errorf("the controller's CA: %w", err)
	}
	if Fingerprint(ca) != tok.CA {
		return fmt.Errorf("the controller answered with CA %s; the join token names %s", Fingerprint(ca), tok.CA)
	}
	c, err := ParseCert(certPEM)
	if err != nil {
		return fmt.Errorf("the host's certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the host's certificate: %w", err)
	}
	if name, err := HostName(c); err != nil || name != tok.Host {
		return fmt.Errorf("the controller issued a certificate for %q; this host joins as %q", c.Subject.CommonName, tok.Host)
	}
	if pub, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(id.Key.Public()) {
		return fmt.Errorf("the controller's certificate is not for this host's key")
	}
	id.CA, id.Cert = ca, c
	return nil
}

package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/pki"
)

// PKIDir is where a cluster with TLS keeps its CA and the controller's
// certificate (the controller's --tls-dir); CAFile is the CA's
// certificate, what users trust (--ca, GODWIT_CA).
func PKIDir(dir string) string { return filepath.Join(dir, "pki") }

// CAFile is the cluster CA's certificate in dir's PKI.
func CAFile(dir string) string { return filepath.Join(PKIDir(dir), pki.CACertFile) }

// TokenFile holds the local cluster's admin token (mode 0600): the
// CLI uses it when nothing else names a token, like CAFile.
func TokenFile(dir string) string { return filepath.Join(dir, "admin.token") }

// hostTLSDir is where host's agent keeps its certificate (its default
// --tls-dir).
func (l *Local) hostTLSDir(host string) string { return filepath.Join(l.StateDir(host), "tls") }

// setupPKI makes the cluster's CA and every host's certificate, unless
// an earlier start made them (a restart keeps its CA: hosts need not join
// again). godwit up holds the CA, so it issues the hosts' certificates
// itself rather than through join tokens.
func (l *Local) setupPKI() error {
	dir := PKIDir(l.opts.Dir)
	var ca *pki.Authority
	var err error
	if _, serr := os.Stat(filepath.Join(dir, pki.CAKeyFile)); serr == nil {
		ca, err = pki.OpenAuthority(dir)
	} else {
		ca, err = pki.Init(dir, "local", controllerName, []string{"127.0.0.1", "::1", "localhost"})
	}
	if err != nil {
		return fmt.Errorf("the cluster's CA: %w", err)
	}
	for _, h := range l.HostNames() {
		if _, ok, err := pki.LoadIdentity(l.hostTLSDir(h)); err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		id, err := ca.IssueHost(h)
		if err != nil {
			return err
		}
		if err := id.Save(l.hostTLSDir(h)); err != nil {
			return err
		}
	}
	l.userTLS = pki.TrustConfig(ca.Identity().CA)
	l.agentTLS = controllerAgentTLS(ca.Identity())
	l.token, err = adminToken(l.opts.Dir)
	return err
}

// adminToken returns the cluster's admin token, made with the CA (its
// hash beside the CA for the controller, the token in TokenFile), or
// made again when its file is gone: the controller adds the new one, and
// the old one stays valid until revoked.
func adminToken(dir string) (string, error) {
	if b, err := os.ReadFile(TokenFile(dir)); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.Remove(filepath.Join(PKIDir(dir), auth.BootstrapFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	tok, err := auth.WriteBootstrap(PKIDir(dir))
	if err != nil {
		return "", err
	}
	return tok, os.WriteFile(TokenFile(dir), []byte(tok+"\n"), 0o600)
}

// controllerAgentTLS is how the cluster's tools reach agents: as the
// controller (an agent answers only the controller and other hosts).
func controllerAgentTLS(id *pki.Identity) *tls.Config {
	return id.ClientConfig(pki.Peer{Roles: []string{pki.RoleHost}})
}

// agentTLSOf is controllerAgentTLS for the cluster in dir, read from its
// PKI; nil for a cluster without one (godwit down of a plain cluster).
func agentTLSOf(dir string) *tls.Config {
	id, ok, err := pki.LoadIdentity(PKIDir(dir))
	if err != nil || !ok {
		return nil
	}
	return controllerAgentTLS(id)
}

// scheme is how the cluster's processes are reached.
func (l *Local) scheme() string {
	if l.opts.TLS {
		return "https://"
	}
	return "http://"
}

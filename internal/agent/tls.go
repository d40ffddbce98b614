package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/pki"
)

// hostTLS is an agent's side of a cluster with a CA: its host's
// certificate, and the TLS configurations made from it once (a client's
// connections are pooled per configuration).
type hostTLS struct {
	id         *pki.Identity
	qemuDir    string      // the certificate as QEMU reads it: encrypted migrations
	server     *tls.Config // the agent API: the controller, and other hosts (disk transfers)
	controller *tls.Config // to the controller

	peersMu sync.Mutex
	peers   map[string]*tls.Config // to other hosts' agents, by the host name each accepts
}

// peer is the client configuration for host's agent, which accepts only
// that host's certificate: made once per host, so that its connections
// are pooled (api's transports are kept per configuration).
func (t *hostTLS) peer(host string) *tls.Config {
	t.peersMu.Lock()
	defer t.peersMu.Unlock()
	cfg, ok := t.peers[host]
	if !ok {
		cfg = t.id.ClientConfig(pki.Peer{Roles: []string{pki.RoleHost}, Name: host})
		t.peers[host] = cfg
	}
	return cfg
}

// tlsDir is where the host's certificate lives.
func (c *Config) tlsDir() string {
	if c.TLSDir != "" {
		return c.TLSDir
	}
	return filepath.Join(c.StateDir, "tls")
}

// setupTLS joins the cluster when the agent was given a join token, then
// loads the host's certificate if it has one.
func (a *Agent) setupTLS(ctx context.Context) error {
	dir := a.cfg.tlsDir()
	if a.cfg.Join != "" {
		if err := join(ctx, a.cfg.Join, a.cfg.Name, dir); err != nil {
			return err
		}
		a.log.Info("joined the cluster", "tls_dir", dir)
	}
	id, ok, err := pki.LoadIdentity(dir)
	if err != nil {
		return fmt.Errorf("the host's certificate in %s: %w", dir, err)
	}
	if !ok {
		return nil
	}
	if name, err := pki.HostName(id.Cert); err != nil || name != a.cfg.Name {
		return fmt.Errorf("the certificate in %s is for %q; this agent is %q (join again with a token for it)", dir, id.Cert.Subject.CommonName, a.cfg.Name)
	}
	if !strings.HasPrefix(a.cfg.Controller, "https://") {
		return fmt.Errorf("this host has a certificate (%s) but the controller URL %s is not https", dir, a.cfg.Controller)
	}
	qemuDir := filepath.Join(dir, "qemu")
	if err := id.SaveQEMU(qemuDir); err != nil {
		return fmt.Errorf("write the migration credentials: %w", err)
	}
	a.tls = &hostTLS{
		id:         id,
		qemuDir:    qemuDir,
		server:     id.ServerConfig(pki.Peer{Roles: []string{pki.RoleController, pki.RoleHost}}, true),
		controller: id.ClientConfig(pki.Peer{Roles: []string{pki.RoleController}}),
		peers:      map[string]*tls.Config{},
	}
	return nil
}

// join gets this host's certificate for a join token: it makes a key,
// sends a certificate request with the token's secret to the controller,
// trusting it only if it shows the CA the token names, and keeps what it
// answers in dir.
func join(ctx context.Context, token, name, dir string) error {
	tok, err := pki.ParseJoinToken(token)
	if err != nil {
		return err
	}
	if tok.Host != name {
		return fmt.Errorf("the join token is for host %q; this agent is %q (--name)", tok.Host, name)
	}
	id, csr, err := pki.Request(name)
	if err != nil {
		return err
	}
	c := api.NewClient(tok.Controller)
	c.HTTP = api.NewHTTPClient(api.HTTPOptions{Timeout: 30 * time.Second, TLS: pki.PinnedConfig(tok.CA)})
	var reply hostapi.JoinReply
	if err := c.Do(ctx, http.MethodPost, "/v1/join", hostapi.JoinRequest{Host: name, Secret: tok.Secret, CSR: string(csr)}, &reply); err != nil {
		return fmt.Errorf("join the cluster at %s: %w", tok.Controller, err)
	}
	if err := id.Complete(tok, []byte(reply.Cert), []byte(reply.CA)); err != nil {
		return err
	}
	return id.Save(dir)
}

// listener is ln, behind TLS when the host has a certificate.
func (a *Agent) listener(ln net.Listener) net.Listener {
	if a.tls == nil {
		return ln
	}
	return tls.NewListener(ln, a.tls.server)
}

// scheme is how the controller reaches this agent.
func (a *Agent) scheme() string {
	if a.tls == nil {
		return "http://"
	}
	return "https://"
}

// controllerTLS is the client configuration to the controller (nil: plain).
func (a *Agent) controllerTLS() *tls.Config {
	if a.tls == nil {
		return nil
	}
	return a.tls.controller
}

// migrationTLS is how a migration is encrypted: with this host's
// certificate when the controller asks (a cluster with a CA), and the
// destination's name for the source to check.
func (a *Agent) migrationTLS(encrypt bool, destination string) (*driver.MigrationTLS, error) {
	if !encrypt {
		return nil, nil
	}
	if a.tls == nil {
		return nil, errs.Invalid("the controller asks for an encrypted migration, and this host has no certificate: join it (godwit host add %s; godwit agent --join)", a.cfg.Name)
	}
	return &driver.MigrationTLS{Dir: a.tls.qemuDir, PeerName: destination}, nil
}

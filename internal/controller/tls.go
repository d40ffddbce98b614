package controller

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/pki"
)

// clusterTLS is the controller's side of a cluster with a CA (godwit
// init): its certificate, and clients for agents that accept only the
// host each is for.
type clusterTLS struct {
	auth    *pki.Authority
	mu      sync.Mutex
	clients map[string]*tls.Config // by host; one per host, so that its connections are pooled
}

func openClusterTLS(dir string) (*clusterTLS, error) {
	a, err := pki.OpenAuthority(dir)
	if err != nil {
		return nil, err
	}
	return &clusterTLS{auth: a, clients: map[string]*tls.Config{}}, nil
}

// agentTLS is the client configuration for host's agent.
func (t *clusterTLS) agentTLS(host string) *tls.Config {
	t.mu.Lock()
	defer t.mu.Unlock()
	cfg, ok := t.clients[host]
	if !ok {
		cfg = t.auth.Identity().ClientConfig(pki.Peer{Roles: []string{pki.RoleHost}, Name: host})
		t.clients[host] = cfg
	}
	return cfg
}

// listener serves TLS on ln: users come without a certificate (with
// an API token), agents with their host's.
func (t *clusterTLS) listener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, t.auth.Identity().ServerConfig(pki.Peer{Roles: []string{pki.RoleHost}, Revoked: t.auth.Revoked}, false))
}

// hostOf is the host whose certificate made request r; an error when the
// cluster has a CA and r came with none.
func (c *Controller) hostOf(r *http.Request) (string, error) {
	if c.tls == nil {
		return "", nil
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", errs.Forbidden("this call is for host agents: present the host's certificate (godwit agent --join)")
	}
	return pki.HostName(r.TLS.PeerCertificates[0])
}

// heartbeat binds a heartbeat to the certificate it came with: a host
// speaks only for itself.
func (c *Controller) heartbeat(ctx context.Context, r *http.Request, hb hostapi.Heartbeat) (hostapi.HeartbeatReply, error) {
	name, err := c.hostOf(r)
	if err != nil {
		return hostapi.HeartbeatReply{}, errs.Forbidden("%v", err)
	}
	if c.tls != nil && name != hb.Host.Name {
		return hostapi.HeartbeatReply{}, errs.Forbidden("a heartbeat for host %q came with the certificate of host %q", hb.Host.Name, name)
	}
	return c.svc.Heartbeat(ctx, hb)
}

// needCA is the error of the PKI routes in a cluster without a CA.
func (c *Controller) needCA() error {
	if c.tls == nil {
		return errs.NotSupported("this cluster has no CA: its controller runs without --tls-dir (godwit init makes one)")
	}
	return nil
}

// addHost makes a join token for a host (godwit host add NAME).
func (c *Controller) addHost(ctx context.Context, r *http.Request, req api.JoinTokenRequest) (api.JoinToken, error) {
	if err := c.needCA(); err != nil {
		return api.JoinToken{}, err
	}
	if err := api.ValidateName("host", r.PathValue("name")); err != nil {
		return api.JoinToken{}, errs.Invalid("%v", err)
	}
	url := req.Controller
	if url == "" {
		url = "https://" + r.Host
	}
	tok, err := c.tls.auth.AddHost(r.PathValue("name"), url)
	if err != nil {
		return api.JoinToken{}, err
	}
	return api.JoinToken{Token: tok.String(), ExpiresIn: pki.JoinTTL.String()}, nil
}

// revokeHost revokes a host's certificates (godwit host revoke NAME).
func (c *Controller) revokeHost(ctx context.Context, r *http.Request) (api.Revocation, error) {
	if err := c.needCA(); err != nil {
		return api.Revocation{}, err
	}
	n, err := c.tls.auth.Revoke(r.PathValue("name"))
	return api.Revocation{Revoked: n}, err
}

// join issues a host its certificate for a join token.
func (c *Controller) join(ctx context.Context, r *http.Request, req hostapi.JoinRequest) (hostapi.JoinReply, error) {
	if err := c.needCA(); err != nil {
		return hostapi.JoinReply{}, err
	}
	cert, ca, err := c.tls.auth.Join(req.Host, req.Secret, []byte(req.CSR))
	if err != nil {
		return hostapi.JoinReply{}, errs.Forbidden("%v", err)
	}
	c.log.Info("host joined", "host", req.Host, "from", r.RemoteAddr)
	return hostapi.JoinReply{Cert: string(cert), CA: string(ca)}, nil
}

package api

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// The transport's fixed limits. They are the values http.DefaultTransport
// used, which every godwit client ran on before, now written down in the
// one place clients are made.
const (
	dialTimeout           = 30 * time.Second // TCP connect
	dialKeepAlive         = 30 * time.Second // TCP keep-alive probe interval
	tlsHandshakeTimeout   = 10 * time.Second
	idleConnTimeout       = 90 * time.Second // an idle pooled connection is closed after this
	maxIdleConns          = 100
	expectContinueTimeout = 1 * time.Second
)

// HTTPOptions are the per-caller settings of NewHTTPClient. The zero value
// is a client with no overall limit, which is what the controller and the
// agent want for calls whose context carries the deadline.
type HTTPOptions struct {
	// Timeout bounds a whole exchange, reading the reply body included
	// (http.Client.Timeout). Zero means none. Set it only for short
	// request/reply calls: consoles and image or disk streams are
	// long-lived and must not have one.
	Timeout time.Duration

	// ResponseHeaderTimeout bounds the wait for the reply's headers once
	// the request is written. Zero means none beyond Timeout and the
	// request's context. It is not set by default because some godwit
	// calls answer only when their work is done (an agent's create fetches
	// the image first, a stop waits for the guest, an image import stores
	// the upload); set it for streams whose server answers at once and
	// then keeps sending (console, image and disk downloads).
	ResponseHeaderTimeout time.Duration

	// TLS is the client's TLS configuration for https URLs: the cluster's
	// CA and, between godwit's components, their certificates (package
	// internal/pki makes them). Nil: the system's roots.
	TLS *tls.Config
}

// NewHTTPClient returns the HTTP client every godwit component uses: the
// public Client, the agent's clients for the controller and for other
// agents, and the controller's clients for agents. No other code builds an
// http.Client or http.Transport (a test in internal/layers fails if one
// does), so TLS and any other transport setting is added here once.
//
// It lives in api, not under internal/, because api is the bottom layer
// that imports nothing of godwit's and that every HTTP caller already
// imports: the public Client needs the constructor, and internal packages
// may import api but api may not import them.
//
// Clients with the same transport settings share one transport and so one
// pool of idle connections, as they shared http.DefaultTransport before;
// a client is therefore cheap to make per call.
func NewHTTPClient(o HTTPOptions) *http.Client {
	return &http.Client{Transport: sharedTransport(o.ResponseHeaderTimeout, o.TLS), Timeout: o.Timeout}
}

// transportKey tells transports apart: by response header timeout and
// TLS configuration (one per identity and peer, made once and reused).
type transportKey struct {
	header time.Duration
	tls    *tls.Config
}

var (
	transportsMu sync.Mutex
	transports   = map[transportKey]*http.Transport{}
)

// sharedTransport returns the transport for a response header timeout
// and TLS configuration, making it on first use.
func sharedTransport(header time.Duration, tlsCfg *tls.Config) *http.Transport {
	transportsMu.Lock()
	defer transportsMu.Unlock()
	key := transportKey{header, tlsCfg}
	if t, ok := transports[key]; ok {
		return t
	}
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: dialKeepAlive,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: header,
		IdleConnTimeout:       idleConnTimeout,
		MaxIdleConns:          maxIdleConns,
		ExpectContinueTimeout: expectContinueTimeout,
		TLSClientConfig:       tlsCfg,
	}
	transports[key] = t
	return t
}

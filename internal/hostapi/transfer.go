package hostapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// Disk transfers between agents (a cold move of a local disk). The
// destination pulls the stopped VM's disk from the source's agent. A host
// certificate alone does not let it: every host has one, and the disk is
// the guest's data. For each transfer the controller mints a token, grants
// it on the source for that VM's disk only and for a bounded time
// (TransferGrant), and hands it to the destination with the source's
// address and host name (ImportDisk), which presents it as
// "Authorization: Bearer TOKEN". The controller revokes the grant once the
// transfer has ended. Tokens live in memory only, on both ends: a move the
// controller's restart interrupts is rolled back or completed by recovery,
// never resumed mid-transfer, so no token need survive one.

// TransferTokenBytes is the randomness of a transfer token.
const TransferTokenBytes = 32

// MaxTransferGrantSeconds bounds a grant's life: a disk transfer that
// lasts longer must be granted again.
const MaxTransferGrantSeconds = 24 * 3600

// NewTransferToken is a fresh transfer token: 32 random bytes, base64url.
func NewTransferToken() string {
	b := make([]byte, TransferTokenBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// CheckTransferToken checks a token's shape: 32 bytes or more, base64url.
func CheckTransferToken(tok string) error {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < TransferTokenBytes || len(tok) > 256 {
		return errs.Invalid("the transfer token is missing or malformed: send the controller's token (%d random bytes, base64url)", TransferTokenBytes)
	}
	return nil
}

// TransferGrant is the body of PUT /v1/vms/{id}/disk-grant (controller →
// the source of a cold move): let a read of the VM's disk with Token in,
// for TTLSeconds at most. A new grant replaces the VM's last one; DELETE
// on the same path revokes it.
type TransferGrant struct {
	Token      string `json:"token"`
	TTLSeconds int    `json:"ttl_seconds"`
}

// Validate checks a grant's token and its life.
func (g TransferGrant) Validate() error {
	if err := CheckTransferToken(g.Token); err != nil {
		return err
	}
	return inRange("ttl_seconds", g.TTLSeconds, 1, MaxTransferGrantSeconds)
}

// TransferTTL is how long a disk transfer's grant lasts: an hour, plus
// the disk's size at a slow 10 MiB/s, so that a big disk on a slow link
// is not cut off mid-way; at most MaxTransferGrantSeconds.
func TransferTTL(diskMiB int) time.Duration {
	d := time.Hour + time.Duration(diskMiB/10)*time.Second
	return min(d, MaxTransferGrantSeconds*time.Second)
}

// CheckAgentURL checks the base URL of a source agent the controller
// names: http or https, to HOST:PORT, and nothing else (no path, query,
// credentials). The destination pulls from nowhere but another agent.
func CheckAgentURL(s string) error {
	u, err := url.Parse(s)
	bad := err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Opaque != "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != ""
	if !bad {
		host, port, err := net.SplitHostPort(u.Host)
		n, perr := strconv.Atoi(port)
		bad = err != nil || host == "" || perr != nil || n < 1 || n > 65535
	}
	if bad {
		return errs.Invalid("the source agent's URL %q is refused: send its registered address, https://HOST:PORT (http:// in a cluster without a CA)", s)
	}
	return nil
}

// GrantDiskTransfer lets a read of a stopped VM's disk with g.Token in.
func (a *Agent) GrantDiskTransfer(ctx context.Context, id string, g TransferGrant) error {
	return a.do(ctx, http.MethodPut, "/v1/vms/"+url.PathEscape(id)+"/disk-grant", g, nil)
}

// RevokeDiskTransfer forgets a VM's grant (none is no error).
func (a *Agent) RevokeDiskTransfer(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, "/v1/vms/"+url.PathEscape(id)+"/disk-grant", nil, nil)
}

// NewPeerAgent is a client for another host's agent over hc, which the
// destination of a disk transfer sets up to check the source's host name
// and to present the transfer's token (BearerTransport).
func NewPeerAgent(base string, hc *http.Client) *Agent {
	c := api.NewClient(base)
	c.HTTP = hc
	return &Agent{c: c, stream: hc}
}

// BearerTransport adds "Authorization: Bearer Token" to each request.
type BearerTransport struct {
	Token string
	Base  http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *BearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.Token)
	return t.Base.RoundTrip(r)
}

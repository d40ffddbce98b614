package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/pki"
)

// Who may read a VM's disk from this agent: the destination of its cold
// move, with the token the controller granted for that VM (hostapi's
// TransferGrant). A host certificate alone is not enough: every host has
// one.

// diskGrant is one VM's grant: the token's hash (the token itself is
// never kept or logged) and when it lapses.
type diskGrant struct {
	Sum     [sha256.Size]byte `json:"sha256"`
	Expires time.Time         `json:"expires"`
}

// grants are the disk transfers granted on this agent, by VM id. The zero
// value is empty and ready, and kept in memory only; with a path, each
// change is written there too (hashes only), so that a transfer resumes
// across a restart of this agent as it did before tokens.
type grants struct {
	mu   sync.Mutex
	m    map[string]diskGrant
	path string
}

// grantsFile is where an agent keeps its grants, in its state directory.
const grantsFile = "disk-grants.json"

// load reads the grants a previous run of the agent left in path; it
// keeps path for what changes from now on.
func (g *grants) load(path string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.path = path
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(b, &g.m)
	}
	if err != nil {
		return fmt.Errorf("the disk transfer grants in %s: %w", path, err)
	}
	return nil
}

// save writes the grants, the lapsed left out (g.mu held).
func (g *grants) save() error {
	for id, gr := range g.m {
		if time.Now().After(gr.Expires) {
			delete(g.m, id)
		}
	}
	if g.path == "" {
		return nil
	}
	b, err := json.Marshal(g.m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(g.path+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(g.path+".tmp", g.path)
}

func (g *grants) put(id, token string, ttl time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]diskGrant{}
	}
	g.m[id] = diskGrant{Sum: sha256.Sum256([]byte(token)), Expires: time.Now().Add(ttl)}
	return g.save()
}

func (g *grants) drop(id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.m[id]; !ok {
		return nil
	}
	delete(g.m, id)
	return g.save()
}

// check lets a read of vm id's disk with the request's bearer token in,
// or says why not (403).
func (g *grants) check(r *http.Request, id string) error {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return errs.Forbidden("reading vm %s's disk needs its move's transfer token (Authorization: Bearer): only the destination the controller named may read it", id)
	}
	sum := sha256.Sum256([]byte(token))
	g.mu.Lock()
	defer g.mu.Unlock()
	gr, ok := g.m[id]
	if ok && time.Now().After(gr.Expires) {
		delete(g.m, id)
		ok = false
	}
	if !ok {
		return errs.Forbidden("no disk transfer of vm %s is granted on this host (none began, or it ended or expired): the controller grants one for each cold move", id)
	}
	if subtle.ConstantTimeCompare(sum[:], gr.Sum[:]) != 1 {
		return errs.Forbidden("the transfer token is not the one granted for vm %s's disk", id)
	}
	return nil
}

func (a *Agent) grantDisk(w http.ResponseWriter, r *http.Request) {
	var g hostapi.TransferGrant
	if err := httpx.Decode(r, &g); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.grants.put(r.PathValue("id"), g.Token, time.Duration(g.TTLSeconds)*time.Second); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("disk transfer granted", "vm", r.PathValue("id"), "for", time.Duration(g.TTLSeconds)*time.Second)
	w.WriteHeader(http.StatusNoContent)
}

func (a *Agent) revokeDisk(w http.ResponseWriter, r *http.Request) {
	if err := a.grants.drop(r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// peerRoutes are the only calls another host's certificate may make: the
// disk reads of a transfer, which need its token besides. Everything else
// (define, start, delete a VM; grant a transfer) is the controller's.
func peerRoute(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/vms/")
	if !ok || r.Method != http.MethodGet {
		return false
	}
	id, sub, _ := strings.Cut(rest, "/")
	return hostapi.CheckVMID(id) == nil && (sub == "disk" || sub == "disk/sha256")
}

// controllerOnly refuses a client with a host's certificate anything but
// peerRoutes (403). Without TLS there is no certificate to tell by.
func (a *Agent) controllerOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && pki.Role(r.TLS.PeerCertificates[0]) != pki.RoleController && !peerRoute(r) {
			a.fail(w, r, errs.Forbidden("host %s's certificate may only read a disk it was granted a transfer of; %s %s is the controller's",
				r.TLS.PeerCertificates[0].Subject.CommonName, r.Method, r.URL.Path))
			return
		}
		next.ServeHTTP(w, r)
	})
}

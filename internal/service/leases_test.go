package service

import (
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/lease"
)

// NotProvenDown over every state of a host's lease, on a fake clock:
// renew every 500 ms, TTL 3 s.
func TestNotProvenDownByLease(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	pool := api.Pool{Name: api.PoolShared, Kind: api.PoolShared, ID: "pool-a"}
	down := api.Host{Name: "h1", State: api.HostDown, Pools: []api.Pool{pool}, LastHeartbeat: time.Now()}
	type step struct {
		advance time.Duration
		read    bool // the pool is read after the clock moved
	}
	renewed := []step{{0, true}}
	for _, tt := range []struct {
		name      string
		host      api.Host
		watch     bool // the controller watches the pool
		steps     []step
		confirmed bool
		want      string // "" allowed, else a part of the refusal
		proof     bool
	}{
		{"up", api.Host{Name: "h1", State: api.HostUp, Pools: []api.Pool{pool}}, true, renewed, true, "is up", false},
		{"no pool watched: the operator's word", down, false, nil, true, "", false},
		{"no pool watched, no word", down, false, nil, false, "--host-is-down", false},
		{"host on another pool", api.Host{Name: "h1", State: api.HostDown, Pools: []api.Pool{{Kind: api.PoolShared, ID: "pool-b"}}}, true, renewed, false, "--host-is-down", false},
		{"renewing overrules the operator", down, true, renewed, true, "was renewed less than", false},
		{"lapsing: refused with a time to retry", down, true, []step{{0, true}, {2 * time.Second, true}}, false, "retry in 2s", false},
		{"lapsing, with the operator's word", down, true, []step{{0, true}, {2 * time.Second, true}}, true, "", false},
		{"expired: proven", down, true, []step{{0, true}, {4 * time.Second, true}}, false, "", true},
		{"pool not read lately: no proof", down, true, []step{{0, true}, {4 * time.Second, true}, {2 * time.Second, false}}, false, "cannot read its lease", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Service{}
			if tt.watch {
				c.leases = newLeaseWatch("/shared", clock)
				c.leases.poolID = "pool-a"
			}
			for _, s := range tt.steps {
				now = now.Add(s.advance)
				if s.read {
					c.leases.tracker.Observe(map[string]lease.Lease{"h1": {Host: "h1", Seq: 5, RenewMS: 500, TTLMS: 3000}})
				}
			}
			got := c.NotProvenDown(tt.host, tt.confirmed)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("NotProvenDown = %q; want %q", got, tt.want)
			}
			if proof := c.FencingEvidence(tt.host); (proof != "") != tt.proof {
				t.Errorf("FencingEvidence = %q; want proof: %v", proof, tt.proof)
			} else if tt.proof && !strings.Contains(proof, "stood still at seq 5 for 4s, longer than its TTL 3s plus a 1s margin") {
				t.Errorf("FencingEvidence = %q", proof)
			}
		})
	}
}

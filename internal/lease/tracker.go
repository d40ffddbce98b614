package lease

import (
	"sync"
	"time"
)

// State is what an observer can say of a lease.
type State string

const (
	// Unknown: never read, or not read lately (the pool may be out of
	// reach of the observer): no conclusion either way.
	Unknown State = "unknown"
	// Renewing: the sequence moved within the last two renew intervals
	// (plus one poll): the host is alive and writing to the pool.
	Renewing State = "renewing"
	// Lapsing: renewals stopped, but not for long enough to be sure the
	// host fenced itself.
	Lapsing State = "lapsing"
	// Expired: the sequence stood still for longer than the lease's TTL
	// plus the margin, and was read lately: the host's watchdog has
	// killed every QEMU of the host on the shared pool.
	Expired State = "expired"
)

// Verdict is an observer's view of one host's lease.
type Verdict struct {
	State State
	Lease Lease // the last lease read (zero when Unknown and never read)
	// Still is how long the sequence has stood still, from the first read
	// that showed it to the last one.
	Still time.Duration
	// Left is how much longer it must stand still to expire (Renewing,
	// Lapsing); Need is the whole wait, TTL plus margin.
	Left, Need time.Duration
}

// Tracker follows the leases of a pool's hosts as one observer reads
// them, and judges them on that observer's monotonic clock alone: a
// restarted observer starts from nothing and must itself see a sequence
// stand still for the whole TTL. Safe for concurrent use.
type Tracker struct {
	poll   time.Duration
	margin time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]*sighting
}

// sighting is one host's lease as last read.
type sighting struct {
	lease Lease
	since time.Time // first read showing lease.Seq
	read  time.Time // last read
}

// NewTracker returns a tracker for an observer that reads the pool every
// poll. margin is added to each lease's TTL: it covers the watchdog's own
// polling and the time a kill takes. now is the clock (time.Now outside
// tests; its readings must carry the monotonic clock).
func NewTracker(poll, margin time.Duration, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{poll: poll, margin: margin, now: now, seen: map[string]*sighting{}}
}

// Observe records one read of the pool: the leases found, by host. Hosts
// whose lease was not found keep their last sighting, which goes stale.
func (t *Tracker) Observe(leases map[string]Lease) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for host, l := range leases {
		s, ok := t.seen[host]
		if !ok || s.lease.Seq != l.Seq {
			s = &sighting{since: now}
			t.seen[host] = s
		}
		s.lease, s.read = l, now
	}
}

// stale is how old the last read may be for a verdict other than Unknown.
func (t *Tracker) stale() time.Duration { return max(3*t.poll, 1500*time.Millisecond) }

// Verdict judges host's lease now.
func (t *Tracker) Verdict(host string) Verdict {
	now := t.now()
	t.mu.Lock()
	s, ok := t.seen[host]
	var cp sighting
	if ok {
		cp = *s
	}
	t.mu.Unlock()
	if !ok {
		return Verdict{State: Unknown}
	}
	v := Verdict{Lease: cp.lease, Still: cp.read.Sub(cp.since), Need: cp.lease.TTL() + t.margin}
	v.Left = max(v.Need-v.Still, 0)
	switch {
	case now.Sub(cp.read) > t.stale():
		v.State = Unknown
	case v.Still >= v.Need:
		v.State = Expired
	case v.Still < 2*cp.lease.Renew()+t.poll:
		v.State = Renewing
	default:
		v.State = Lapsing
	}
	return v
}

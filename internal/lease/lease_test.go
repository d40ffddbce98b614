package lease

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for seq := uint64(1); seq <= 3; seq++ {
		if err := Write(dir, Lease{Host: "host1", Seq: seq, WrittenAt: at, RenewMS: 2000, TTLMS: 10000}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Read(Path(dir, "host1"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Seq != 3 || l.Host != "host1" || !l.WrittenAt.Equal(at) || l.Renew() != 2*time.Second || l.TTL() != 10*time.Second {
		t.Errorf("read back %+v", l)
	}
	if tmp, _ := filepath.Glob(filepath.Join(Dir(dir), "*.tmp")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestReadAll(t *testing.T) {
	dir := t.TempDir()
	if got, err := ReadAll(dir); err != nil || len(got) != 0 {
		t.Fatalf("pool without leases: %v, %v", got, err)
	}
	for _, h := range []string{"a", "b"} {
		if err := Write(dir, Lease{Host: h, Seq: 7, RenewMS: 500, TTLMS: 3000}); err != nil {
			t.Fatal(err)
		}
	}
	bad := map[string]string{
		"broken.lease":  "{not json",
		"liar.lease":    `{"host":"a","seq":1,"renew_ms":500,"ttl_ms":3000}`,
		"nottl.lease":   `{"host":"nottl","seq":1,"renew_ms":500}`,
		"ignored.other": "anything",
	}
	for name, body := range bad {
		if err := os.WriteFile(filepath.Join(Dir(dir), name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadAll(dir)
	if len(got) != 2 || got["a"].Seq != 7 || got["b"].Seq != 7 {
		t.Errorf("leases %v; want a and b at seq 7", got)
	}
	for _, want := range []string{"broken.lease", "liar.lease", "nottl.lease"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v; want it to name %s", err, want)
		}
	}
}

// TestTracker replays reads of one host's lease on a fake clock: renew
// every 500 ms, TTL 3 s, reads every 500 ms, margin 1 s.
func TestTracker(t *testing.T) {
	type step struct {
		advance time.Duration // clock moves first
		seq     uint64        // then the pool is read; 0: the read fails
		want    State
		left    time.Duration // -1: not checked
	}
	const poll = 500 * time.Millisecond
	renewing := []step{{0, 1, Renewing, 4 * time.Second}, {poll, 2, Renewing, -1}, {poll, 3, Renewing, -1}}
	stopped := append(renewing,
		step{poll, 3, Renewing, 3500 * time.Millisecond},
		step{poll, 3, Renewing, -1},
		step{poll, 3, Lapsing, 2500 * time.Millisecond}, // 1.5 s still: 2 renewals + a poll missed
		step{2 * time.Second, 3, Lapsing, 500 * time.Millisecond},
		step{poll, 3, Expired, 0}, // 4 s still = TTL + margin
	)
	cases := []struct {
		name  string
		steps []step
	}{
		{"renewing", renewing},
		{"renewals stop, then the lease expires", stopped},
		{"a renewal after expiry makes it live again", append(append([]step{}, stopped...), step{poll, 4, Renewing, 4 * time.Second})},
		{"reads stop: no verdict, even past the TTL", append(append([]step{}, renewing...),
			step{poll, 0, Renewing, -1}, step{2 * poll, 0, Renewing, -1}, step{time.Millisecond, 0, Unknown, -1}, step{5 * time.Second, 0, Unknown, -1})},
		{"an observer that starts late waits the whole TTL itself", []step{
			{0, 9, Renewing, 4 * time.Second}, {3 * time.Second, 9, Lapsing, time.Second}, {time.Second, 9, Expired, 0}}},
		{"a seq going back counts as a renewal", append(append([]step{}, stopped...), step{poll, 1, Renewing, 4 * time.Second})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			tr := NewTracker(poll, time.Second, clock.now)
			if v := tr.Verdict("h"); v.State != Unknown {
				t.Fatalf("before any read: %s", v.State)
			}
			for i, s := range tc.steps {
				clock.add(s.advance)
				if s.seq != 0 {
					tr.Observe(map[string]Lease{"h": {Host: "h", Seq: s.seq, RenewMS: 500, TTLMS: 3000}})
				}
				v := tr.Verdict("h")
				if v.State != s.want || (s.left >= 0 && v.Left != s.left) {
					t.Fatalf("step %d (seq %d at %s): %s, %s left (still %s); want %s, %s left", i, s.seq, clock, v.State, v.Left, v.Still, s.want, s.left)
				}
			}
		})
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func (c *fakeClock) String() string      { return c.t.Format(time.StampMilli) }

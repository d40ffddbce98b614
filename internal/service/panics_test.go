package service

import (
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
)

// The VM's panic count adds each panic once, whichever host reports it
// and however often: a host reports its last panic with its own count
// (since the VM was defined there) in every heartbeat.
func TestRecordPanicCounts(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var v api.VM
	for i, step := range []struct {
		host    string
		p       hostapi.Panic
		moved   time.Time
		new     bool
		count   int
		comment string
	}{
		{"host1", hostapi.Panic{At: at(10), Count: 1}, time.Time{}, true, 1, "the first"},
		{"host1", hostapi.Panic{At: at(10), Count: 1}, time.Time{}, false, 1, "reported again"},
		{"host1", hostapi.Panic{At: at(30), Count: 3}, time.Time{}, true, 3, "two more between heartbeats"},
		{"host2", hostapi.Panic{At: at(5), Count: 1}, time.Time{}, true, 4, "after a move, on a host whose clock is behind"},
		{"host2", hostapi.Panic{At: at(5), Count: 1}, time.Time{}, false, 4, "reported again"},
		{"host2", hostapi.Panic{At: at(50), Count: 1}, time.Time{}, true, 5, "defined there afresh (its count restarted)"},
		{"host1", hostapi.Panic{At: at(70), Count: 1, Arrived: true}, at(45), true, 5, "arrived held at host2's panic, which host2 reported during the move"},
		{"host2", hostapi.Panic{At: at(90), Count: 1, Arrived: true}, at(80), true, 6, "arrived held at a panic host1 never reported"},
	} {
		got := recordPanic(&v, step.host, &step.p, step.moved)
		if got != step.new || v.LastPanic.Count != step.count || v.LastPanic.Host != step.host {
			t.Errorf("step %d (%s): recorded %v, last %+v; want recorded %v, count %d on %s", i, step.comment, got, v.LastPanic, step.new, step.count, step.host)
		}
	}
}

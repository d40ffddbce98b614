package drivertest

import (
	"io"

	"github.com/godwit/godwit/internal/guestlog"
)

// Heartbeat is one line of the test guest's console; see guestlog, which
// owns the format so that packages other than tests (the fake driver,
// benchmarks) can read it without importing a test suite.
type Heartbeat = guestlog.Heartbeat

// ParseHeartbeat parses one console line; ok is false for any other line,
// including a heartbeat cut short.
func ParseHeartbeat(line string) (hb Heartbeat, ok bool) { return guestlog.Parse(line) }

// LastHeartbeat returns the last complete heartbeat line in r.
func LastHeartbeat(r io.Reader) (Heartbeat, bool) { return guestlog.Last(r) }

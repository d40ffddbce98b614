package service

import (
	"context"
	"errors"
	"time"

	"github.com/godwit/godwit/internal/errs"
)

// agentOutage is how long, by default (Config.AgentOutage), a running
// operation waits for an agent that
// stopped answering before it gives up on it. An agent restarts in a few
// seconds (its VMs keep running, and a QEMU keeps migrating without it),
// so an unreachable agent is first taken for a restarting one: failing at
// once would end a migration, or leave its rollback half done, for want
// of a retry.
const agentOutage = 60 * time.Second

// agentRetry is how often an unreachable agent is asked again.
const agentRetry = time.Second

// whileUnavailable calls f until it returns anything but an unreachable
// agent, for at most the configured outage or until ctx is done; it
// returns f's last error.
func (c *Service) whileUnavailable(ctx context.Context, f func(context.Context) error) error {
	return waitUnavailable(ctx, c.cfg.AgentOutage, f)
}

// waitUnavailable is whileUnavailable for at most outage.
func waitUnavailable(ctx context.Context, outage time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(outage)
	for {
		err := f(ctx)
		if err == nil || !errors.Is(err, errs.ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(agentRetry):
		}
	}
}

// stallTimeout is how long a pre-copy transfer may move nothing before
// the controller takes its link for cut. A link that fails silently (a
// partition: no reset, no error) leaves QEMU's migration active for ever,
// and the guest paused for good once the convergence policy pauses it
// for the final copy.
const stallTimeout = 30 * time.Second

// stallWatch notices a transfer whose byte count stopped moving.
type stallWatch struct {
	moved int64
	since time.Time
}

// stalled records how much has moved by now and reports whether nothing
// moved for stallTimeout.
func (s *stallWatch) stalled(now time.Time, moved int64) bool {
	if s.since.IsZero() || moved != s.moved {
		s.moved, s.since = moved, now
		return false
	}
	return now.Sub(s.since) >= stallTimeout
}

// resumed reports, when moved differs from the count last seen, how long
// that count had stood still: the span without progress that just ended
// (the metrics keep those of at least metrics.MinStall). Zero while
// nothing changed, and before the first count. Call it before stalled,
// which takes the new count.
func (s *stallWatch) resumed(now time.Time, moved int64) time.Duration {
	if s.since.IsZero() || moved == s.moved {
		return 0
	}
	return now.Sub(s.since)
}

// open is how long the count has stood still by now: the span without
// progress a transfer ends in (cut off, aborted, or a few milliseconds
// since the last read when it completed).
func (s *stallWatch) open(now time.Time) time.Duration {
	if s.since.IsZero() {
		return 0
	}
	return now.Sub(s.since)
}

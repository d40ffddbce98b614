package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/godwit/godwit/api"
)

// TimeoutError is what WaitUntil returns when time runs out; Last is the
// check's last answer.
type TimeoutError struct {
	After time.Duration
	Last  error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("still not ready after %s: %v", e.After, e.Last)
}

func (e *TimeoutError) Unwrap() error { return e.Last }

// attemptTimeout bounds one check, so that a process that accepts
// connections but never answers cannot stall the wait.
const attemptTimeout = 2 * time.Second

// WaitUntil calls check every interval until it returns nil. It gives up
// when failed reports an error (a process died; nil failed never does),
// when ctx ends (ctx's error), or when timeout passes (a *TimeoutError).
// Each check gets a context of its own, bounded to a few seconds.
func WaitUntil(ctx context.Context, timeout, interval time.Duration, check func(context.Context) error, failed func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := check(actx)
		cancel()
		if err == nil {
			return nil
		}
		if failed != nil {
			if ferr := failed(); ferr != nil {
				return ferr
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return &TimeoutError{After: timeout, Last: err}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// hostsUp returns nil when every named host is registered and up, else a
// notUp listing the others.
func hostsUp(ctx context.Context, ctrl *api.Client, names []string) error {
	hs, err := ctrl.Hosts(ctx)
	if err != nil {
		return err
	}
	up := map[string]bool{}
	for _, h := range hs {
		up[h.Name] = h.State == api.HostUp
	}
	var missing notUp
	for _, n := range names {
		if !up[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return missing
	}
	return nil
}

// notUp names the hosts that are not up yet.
type notUp []string

func (n notUp) Error() string { return fmt.Sprintf("not up yet: %v", []string(n)) }

package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/godwit/godwit/api"
)

// timeoutError is what waitUntil returns when time runs out; last is the
// check's last answer.
type timeoutError struct {
	after time.Duration
	last  error
}

func (e timeoutError) Error() string {
	return fmt.Sprintf("still not ready after %s: %v", e.after, e.last)
}

func (e timeoutError) Unwrap() error { return e.last }

// attemptTimeout bounds one check, so that a process that accepts
// connections but never answers cannot stall the wait.
const attemptTimeout = 2 * time.Second

// waitUntil calls check every interval until it returns nil. It gives up
// when failed reports an error (a process died; nil failed never does),
// when ctx ends, or when timeout passes (a timeoutError).
func waitUntil(ctx context.Context, timeout, interval time.Duration, check func(context.Context) error, failed func() error) error {
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
			return timeoutError{after: timeout, last: err}
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
func hostsUp(ctx context.Context, ctrl string, names []string) error {
	hs, err := api.NewClient(ctrl).Hosts(ctx)
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

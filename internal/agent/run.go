//go:build !wip

package agent

import (
	"context"
	"errors"
)

// Run serves the agent until ctx is cancelled or the controller asks it to
// shut down. VMs keep running when it returns, unless a shutdown request
// asked to stop them.
func Run(ctx context.Context, cfg Config) error {
	return errors.New("agent: not implemented yet")
}

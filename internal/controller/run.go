//go:build !wip

package controller

import (
	"context"
	"errors"
)

// Run serves the controller until ctx is cancelled.
func Run(ctx context.Context, cfg Config) error {
	return errors.New("controller: not implemented yet")
}

package service

import (
	"fmt"

	"github.com/godwit/godwit/api"
)

// transitions is the migration state machine: every state a migration may
// move to from each state. Every non-final state may also fail, to
// rolled-back, cancelled or needs-attention; the final states
// (api.MigrationState.Final) have no entry.
var transitions = map[api.MigrationState][]api.MigrationState{
	api.MigQueued:        failing(api.MigScheduling),
	api.MigScheduling:    failing(api.MigPreparing),
	api.MigPreparing:     failing(api.MigWaitingLink, api.MigTransferring),
	api.MigWaitingLink:   failing(api.MigTransferring),
	api.MigTransferring:  failing(api.MigSwitchingOver),
	api.MigSwitchingOver: failing(api.MigFinishing),
	api.MigFinishing:     failing(api.MigCompleted),
}

// failing is the states a migration may move to onward, and the ways it
// may end early.
func failing(onward ...api.MigrationState) []api.MigrationState {
	return append(onward, api.MigRolledBack, api.MigCancelled, api.MigNeedsAttention)
}

// checkTransition returns an error unless from → to is allowed.
func checkTransition(from, to api.MigrationState) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	return fmt.Errorf("migration state %s cannot move to %s", from, to)
}

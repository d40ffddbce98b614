package service

import (
	"fmt"

	"github.com/godwit/godwit/api"
)

// transitions is the migration state machine: every state a migration may
// move to from each state. Every non-final state may also fail, to
// rolled-back, cancelled or needs-attention.
var transitions = map[string][]string{
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
func failing(onward ...string) []string {
	return append(onward, api.MigRolledBack, api.MigCancelled, api.MigNeedsAttention)
}

// finalMigration reports whether a migration has ended.
func finalMigration(state string) bool {
	_, ok := transitions[state]
	return !ok
}

// checkTransition returns an error unless from → to is allowed.
func checkTransition(from, to string) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	return fmt.Errorf("migration state %s cannot move to %s", from, to)
}

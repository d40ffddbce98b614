package service

import (
	"fmt"

	"github.com/godwit/godwit/api"
)

// transitions is the migration state machine: every state a migration may
// move to from each state. Every non-final state may also fail (to
// rolled-back, cancelled or needs-attention); those edges are added below.
var transitions = map[string][]string{
	api.MigQueued:        {api.MigScheduling},
	api.MigScheduling:    {api.MigPreparing},
	api.MigPreparing:     {api.MigWaitingLink, api.MigTransferring},
	api.MigWaitingLink:   {api.MigTransferring},
	api.MigTransferring:  {api.MigSwitchingOver},
	api.MigSwitchingOver: {api.MigFinishing},
	api.MigFinishing:     {api.MigCompleted},
}

func init() {
	for s := range transitions {
		transitions[s] = append(transitions[s], api.MigRolledBack, api.MigCancelled, api.MigNeedsAttention)
	}
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

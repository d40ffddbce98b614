package service

import (
	"testing"

	"github.com/godwit/godwit/api"
)

// The state table and api.MigrationState.Final agree: a state has moves
// onward exactly when it is not final, and every state a move reaches is
// either in the table or final.
func TestTransitionsAgreeWithFinal(t *testing.T) {
	for from, tos := range transitions {
		if from.Final() {
			t.Errorf("%s is final, yet the table moves it on", from)
		}
		for _, to := range tos {
			if _, ok := transitions[to]; !ok && !to.Final() {
				t.Errorf("%s → %s: %s is neither in the table nor final", from, to, to)
			}
		}
	}
	for _, s := range []api.MigrationState{api.MigCompleted, api.MigRolledBack, api.MigCancelled, api.MigNeedsAttention} {
		if err := checkTransition(s, api.MigQueued); err == nil {
			t.Errorf("final state %s moved on", s)
		}
	}
}

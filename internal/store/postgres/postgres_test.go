package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/godwit/godwit/internal/store"
	"github.com/godwit/godwit/internal/store/postgres"
	"github.com/godwit/godwit/internal/store/storetest"
)

// TestStoreSuite runs the store suite on PostgreSQL, each subtest in a
// fresh database, when GODWIT_TEST_POSTGRES names a server (make test
// starts one with scripts/test-postgres.sh).
func TestStoreSuite(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip(storetest.PostgresEnv + " is not set; make test starts a PostgreSQL server and sets it")
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), storetest.PostgresDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/godwit/godwit/internal/store"
	"github.com/godwit/godwit/internal/store/postgres"
	"github.com/godwit/godwit/internal/store/storetest"
)

var seq atomic.Int64

// TestStoreSuite runs the store suite on PostgreSQL, each subtest in a
// fresh database, when GODWIT_TEST_POSTGRES names a server (make test
// starts one with scripts/test-postgres.sh).
func TestStoreSuite(t *testing.T) {
	dsn := os.Getenv("GODWIT_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("GODWIT_TEST_POSTGRES is not set; make test starts a PostgreSQL server and sets it")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	storetest.Run(t, func(t *testing.T) store.Store {
		name := fmt.Sprintf("godwit_test_%d_%d", time.Now().UnixNano(), seq.Add(1))
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(dsn)
		u.Path = "/" + name
		s, err := postgres.Open(context.Background(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.Close()
			if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil && !strings.Contains(err.Error(), "does not exist") {
				t.Logf("drop %s: %v", name, err)
			}
		})
		return s
	})
}

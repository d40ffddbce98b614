// Package open chooses and opens the controller's store from a DSN.
package open

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
	"github.com/godwit/godwit/internal/store/postgres"
	"github.com/godwit/godwit/internal/store/sqlite"
)

// Open opens the store named by dsn: "" for SQLite at dataDir/godwit.db,
// "sqlite:PATH" for SQLite elsewhere, "postgres://…" for PostgreSQL.
func Open(ctx context.Context, dsn, dataDir string) (store.Store, error) {
	switch {
	case dsn == "":
		return sqlite.Open(ctx, filepath.Join(dataDir, "godwit.db"))
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn)
	}
	return nil, errs.Invalid("unknown store %q; use sqlite:PATH or postgres://USER:PASS@HOST/DB", dsn)
}

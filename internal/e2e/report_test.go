package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// faultTable writes the rows of a fault test's table to
// $GODWIT_FAULTS_OUT/<name>.txt, where `make test-faults` collects them
// for docs/reliability.md (scripts/faults-tables.sh). Without the
// variable it does nothing: t.Log has the table already.
func faultTable(t *testing.T, name string, rows []string) {
	t.Helper()
	writeRows(t, "GODWIT_FAULTS_OUT", name, rows)
}

// writeRows writes rows to $env/<name>.txt when env names a directory.
func writeRows(t *testing.T, env, name string, rows []string) {
	t.Helper()
	dir := os.Getenv(env)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Error(err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Error(err)
	}
}

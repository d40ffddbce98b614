package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
	"github.com/godwit/godwit/internal/store/postgres"
	"github.com/godwit/godwit/internal/store/sqlite"
	"github.com/godwit/godwit/internal/store/sqlstore"
	"github.com/godwit/godwit/internal/store/storetest"
)

var ctx = context.Background()

// engine is one database to test on: raw access through driver and dsn,
// and the engine's own Open, which migrates the schema.
type engine struct {
	d      sqlstore.Dialect
	driver string
	dsn    string
	open   func() (store.Store, error)
}

// raw opens the database without migrating past version v.
func (e engine) raw(t *testing.T, v int) *sqlstore.Store {
	t.Helper()
	db, err := sql.Open(e.driver, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.NewAt(ctx, db, e.d, v)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachEngine runs fn on a new, empty SQLite file and, when the
// PostgreSQL tests run, on a new, empty PostgreSQL database.
func forEachEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "godwit.db")
		fn(t, engine{d: sqlite.Dialect, driver: "sqlite", dsn: "file:" + path,
			open: func() (store.Store, error) { return sqlite.Open(ctx, path) }})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.PostgresDB(t)
		fn(t, engine{d: postgres.Dialect, driver: "pgx", dsn: dsn,
			open: func() (store.Store, error) { return postgres.Open(ctx, dsn) }})
	})
}

func doc(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ids[T any](t *testing.T, vs []T, err error, id func(T) string) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		out = append(out, id(v))
	}
	return strings.Join(out, " ")
}

// A database that an older godwit left at schema version 3, with its
// migrations, intents and images in tables of their own, upgrades in
// place: every record is read back whole and every filter still works.
func TestUpgradeToDocuments(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		t0 := time.Now().UTC()
		m1 := api.Migration{ID: "m1", VM: "a", Kind: api.KindLive, State: api.MigCompleted, Source: "h1", Destination: "h2",
			Phases: []api.Phase{{State: api.MigQueued, At: t0.Add(-time.Minute)}}, CreatedAt: t0.Add(-time.Minute), UpdatedAt: t0}
		m2 := api.Migration{ID: "m2", VM: "a", Kind: api.KindCold, State: api.MigQueued, Source: "h2",
			Phases: []api.Phase{{State: api.MigQueued, At: t0}}, CreatedAt: t0, UpdatedAt: t0}
		m3 := api.Migration{ID: "m3", VM: "b", Kind: api.KindLive, State: api.MigTransferring, Source: "h1",
			Phases: []api.Phase{}, CreatedAt: t0.Add(-30 * time.Second), UpdatedAt: t0}
		i1 := api.Intent{ID: "i1", Kind: api.IntentDrain, Target: "h1", State: api.IntentRunning,
			Params:     api.IntentParams{OnFailure: api.OnFailureSkip, MaxPerSource: 2},
			Operations: []api.Operation{{VM: "b", Kind: api.OpLive, State: api.OpPending, Source: "h1"}},
			CreatedAt:  t0.Add(-time.Minute), UpdatedAt: t0}
		i2 := api.Intent{ID: "i2", Kind: api.IntentResize, Target: "a", State: api.IntentCompleted,
			Operations: []api.Operation{}, CreatedAt: t0, UpdatedAt: t0}
		im := api.Image{Name: "img", Kind: api.ImageKernel, Cmdline: "console=ttyS0",
			Files: []api.ImageFile{{Role: "kernel", Size: 10, SHA256: "ab"}}, CreatedAt: t0}
		vm := api.VM{ID: "id-a", Name: "a", Project: "p", Host: "h1", Image: "img", State: api.VMRunning, CreatedAt: t0, UpdatedAt: t0}

		// Written the old way: the statements of the code before version 4.
		old := e.raw(t, 3)
		write := func(query string, args ...any) {
			t.Helper()
			if err := old.Exec(ctx, query, args...); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range []struct {
			m      api.Migration
			active bool
		}{{m1, false}, {m2, true}, {m3, true}} {
			write(`INSERT INTO migrations (id, vm, active, created_at, doc) VALUES (?, ?, ?, ?, ?)`,
				m.m.ID, m.m.VM, m.active, m.m.CreatedAt.UnixNano(), doc(t, m.m))
		}
		for _, in := range []struct {
			in     api.Intent
			active bool
		}{{i1, true}, {i2, false}} {
			write(`INSERT INTO intents (id, target, active, created_at, doc) VALUES (?, ?, ?, ?, ?)`,
				in.in.ID, in.in.Target, in.active, in.in.CreatedAt.UnixNano(), doc(t, in.in))
		}
		write(`INSERT INTO images (name, doc) VALUES (?, ?)`, im.Name, doc(t, im))
		if _, err := old.UpsertHost(ctx, api.Host{Name: "h1", LastHeartbeat: t0}); err != nil {
			t.Fatal(err)
		}
		if err := old.CreateVM(ctx, vm); err != nil {
			t.Fatal(err)
		}
		old.Close()

		s, err := e.open()
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		defer s.Close()
		if err := s.(*sqlstore.Store).Exec(ctx, `SELECT 1 FROM migrations`); err == nil {
			t.Error("the migrations table is still there after the upgrade")
		}

		if got, err := s.Migration(ctx, "m1"); err != nil || !reflect.DeepEqual(got, m1) {
			t.Errorf("migration m1 after the upgrade: %v\n got %+v\nwant %+v", err, got, m1)
		}
		if got, err := s.Intent(ctx, "i1"); err != nil || !reflect.DeepEqual(got, i1) {
			t.Errorf("intent i1 after the upgrade: %v\n got %+v\nwant %+v", err, got, i1)
		}
		if got, err := s.Image(ctx, "img"); err != nil || !reflect.DeepEqual(got, im) {
			t.Errorf("image after the upgrade: %v\n got %+v\nwant %+v", err, got, im)
		}
		if got, err := s.VM(ctx, "a"); err != nil || !reflect.DeepEqual(got, vm) {
			t.Errorf("vm after the upgrade: %v\n got %+v\nwant %+v", err, got, vm)
		}
		if _, err := s.Host(ctx, "h1"); err != nil {
			t.Errorf("host after the upgrade: %v", err)
		}

		migID := func(m api.Migration) string { return m.ID }
		intentID := func(in api.Intent) string { return in.ID }
		migs := func(f store.MigrationFilter) string { ms, err := s.Migrations(ctx, f); return ids(t, ms, err, migID) }
		intents := func(f store.IntentFilter) string { is, err := s.Intents(ctx, f); return ids(t, is, err, intentID) }
		for _, c := range []struct{ name, got, want string }{
			{"migrations", migs(store.MigrationFilter{}), "m2 m3 m1"},
			{"migrations of a", migs(store.MigrationFilter{VM: "a"}), "m2 m1"},
			{"active migrations", migs(store.MigrationFilter{Active: true}), "m2 m3"},
			{"active migrations of a", migs(store.MigrationFilter{VM: "a", Active: true}), "m2"},
			{"intents", intents(store.IntentFilter{}), "i2 i1"},
			{"active intents", intents(store.IntentFilter{Active: true}), "i1"},
			{"intents on a", intents(store.IntentFilter{Target: "a"}), "i2"},
		} {
			if c.got != c.want {
				t.Errorf("%s after the upgrade = %q; want %q", c.name, c.got, c.want)
			}
		}
		ims, err := s.Images(ctx)
		if err != nil || len(ims) != 1 || ims[0].Name != "img" {
			t.Errorf("images after the upgrade = %+v, %v", ims, err)
		}

		// The moved rows are live: keys, updates and deletes work on them.
		if err := s.CreateMigration(ctx, m1); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("create a moved migration's id again: %v; want ErrConflict", err)
		}
		if _, err := s.UpdateMigration(ctx, "m2", func(m *api.Migration) error { m.State = api.MigCompleted; return nil }); err != nil {
			t.Fatal(err)
		}
		if got := migs(store.MigrationFilter{Active: true}); got != "m3" {
			t.Errorf("active migrations after m2 completed = %q; want m3", got)
		}
		if err := s.DeleteImage(ctx, "img"); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("delete a moved image in use: %v; want ErrConflict", err)
		}

		// Opening it again applies nothing twice.
		s.Close()
		if s, err = e.open(); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if got := migs(store.MigrationFilter{VM: "a"}); got != "m2 m1" {
			t.Errorf("migrations of a after reopening = %q", got)
		}
	})
}

// A database at schema version 4 upgrades to networks and ports (5): its
// records stay, the new tables take networks and ports, and their
// constraints hold on the upgraded database (foreign keys included).
func TestUpgradeToNetworks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		t0 := time.Now().UTC()
		im := api.Image{Name: "img", Kind: api.ImageKernel, CreatedAt: t0}
		vm := api.VM{ID: "id-a", Name: "a", Project: "p", Host: "h1", Image: "img", State: api.VMRunning, CreatedAt: t0, UpdatedAt: t0}
		old := e.raw(t, 4)
		if err := old.Exec(ctx, `SELECT 1 FROM networks`); err == nil {
			t.Fatal("a networks table at schema version 4")
		}
		if err := old.CreateImage(ctx, im); err != nil {
			t.Fatal(err)
		}
		if err := old.CreateVM(ctx, vm); err != nil {
			t.Fatal(err)
		}
		old.Close()

		s, err := e.open()
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		defer s.Close()
		if got, err := s.VM(ctx, "a"); err != nil || !reflect.DeepEqual(got, vm) {
			t.Errorf("vm after the upgrade: %v\n got %+v\nwant %+v", err, got, vm)
		}
		if got, err := s.Image(ctx, "img"); err != nil || !reflect.DeepEqual(got, im) {
			t.Errorf("image after the upgrade: %v\n got %+v\nwant %+v", err, got, im)
		}
		n := api.Network{Name: "net1", Type: api.NetworkBridge, Subnet: "10.1.0.0/24", Gateway: "10.1.0.1", MTU: api.DefaultMTU, CreatedAt: t0}
		if err := s.CreateNetwork(ctx, n); err != nil {
			t.Fatal(err)
		}
		p := api.Port{ID: "p1", Network: "net1", VMID: vm.ID, MAC: "02:00:00:00:00:01", IP: "10.1.0.10", CreatedAt: t0}
		if err := s.CreatePorts(ctx, []api.Port{p}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreatePorts(ctx, []api.Port{{ID: "p2", Network: "nope", VMID: vm.ID, MAC: "02:00:00:00:00:02"}}); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("a port on an unknown network after the upgrade: %v; want ErrNotFound", err)
		}
		if err := s.CreatePorts(ctx, []api.Port{{ID: "p3", Network: "net1", VMID: "id-b", MAC: p.MAC}}); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("a taken MAC after the upgrade: %v; want ErrConflict", err)
		}
		if err := s.DeleteNetwork(ctx, "net1"); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("delete a network in use after the upgrade: %v; want ErrConflict", err)
		}

		// Opening it again applies nothing twice.
		s.Close()
		if s, err = e.open(); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if got, err := s.Network(ctx, "net1"); err != nil || got.Ports != 1 {
			t.Errorf("network after reopening = %+v, %v; want 1 port", got, err)
		}
	})
}

// A database at schema version 5 upgrades to VMs that record their
// image's disk checksum (6): a VM of a disk image gets the checksum its
// image holds, a VM of a kernel image or of an image that is gone gets
// none, and nothing else of any record changes.
func TestUpgradeToImageChecksums(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		t0 := time.Now().UTC()
		sum := strings.Repeat("ab", 32)
		disk := api.Image{Name: "disk", Kind: api.ImageDisk, Files: []api.ImageFile{{Role: api.RoleDisk, Size: 10, SHA256: sum}}, CreatedAt: t0}
		kernel := api.Image{Name: "kernel", Kind: api.ImageKernel, Files: []api.ImageFile{{Role: api.RoleKernel, Size: 10, SHA256: "cd"}}, CreatedAt: t0}
		vm := func(name, image string) api.VM {
			return api.VM{ID: "id-" + name, Name: name, Project: "p", Host: "h1", Image: image, Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64, DiskMiB: 1024},
				Pool: api.PoolLocal, State: api.VMRunning, Ports: []api.Port{{ID: "p-" + name, MAC: "02:00:00:00:00:01"}}, CreatedAt: t0, UpdatedAt: t0}
		}
		a, b, c := vm("a", "disk"), vm("b", "kernel"), vm("c", "gone")
		old := e.raw(t, 5)
		for _, im := range []api.Image{disk, kernel} {
			if err := old.CreateImage(ctx, im); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range []api.VM{a, b, c} {
			if err := old.CreateVM(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		old.Close()

		s, err := e.open()
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		defer s.Close()
		a.ImageSHA256 = sum
		for _, want := range []api.VM{a, b, c} {
			if got, err := s.VM(ctx, want.Name); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("vm %s after the upgrade: %v\n got %+v\nwant %+v", want.Name, err, got, want)
			}
		}
		if got, err := s.Image(ctx, "disk"); err != nil || !reflect.DeepEqual(got, disk) {
			t.Errorf("image after the upgrade: %v\n got %+v\nwant %+v", err, got, disk)
		}
		s.Close()
		if s, err = e.open(); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if got, _ := s.VM(ctx, "a"); got.ImageSHA256 != sum {
			t.Errorf("vm a after reopening: image_sha256 %q", got.ImageSHA256)
		}
	})
}

// A database at schema version 6 upgrades to stored flavors (7): its
// records stay, and on the upgraded database a flavor's name is unique
// among flavors while other kinds still share their refs.
func TestUpgradeToFlavors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		t0 := time.Now().UTC()
		m1 := api.Migration{ID: "m1", VM: "a", Kind: api.KindLive, State: api.MigQueued, Phases: []api.Phase{}, CreatedAt: t0, UpdatedAt: t0}
		m2 := api.Migration{ID: "m2", VM: "a", Kind: api.KindCold, State: api.MigQueued, Phases: []api.Phase{}, CreatedAt: t0, UpdatedAt: t0}
		old := e.raw(t, 6)
		for _, m := range []api.Migration{m1, m2} {
			if err := old.CreateMigration(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		old.Close()

		s, err := e.open()
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		defer s.Close()
		if ms, err := s.Migrations(ctx, store.MigrationFilter{VM: "a"}); err != nil || len(ms) != 2 {
			t.Errorf("migrations of a after the upgrade: %d, %v; want 2", len(ms), err)
		}
		f := api.NamedFlavor{ID: "1", Name: "tiny", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}, CreatedAt: t0}
		if err := s.CreateFlavor(ctx, f); err != nil {
			t.Fatal(err)
		}
		f.ID = "2"
		if err := s.CreateFlavor(ctx, f); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("a second flavor named tiny after the upgrade: %v; want ErrConflict", err)
		}
	})
}

// A database at schema version 7 upgrades to audit records filed under
// the VM they acted on (8): the records stay, and the caller an older
// godwit kept in their ref matches no VM filter.
func TestUpgradeAuditByVM(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		old := e.raw(t, 7)
		r := api.AuditRecord{ID: "a1", Time: time.Now().UTC(), Who: "admin", Method: "POST", Path: "/v1/vms", Status: 201}
		if err := old.AddAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
		// Written the old way: the caller in ref.
		if err := old.Exec(ctx, `UPDATE documents SET ref = 'admin' WHERE kind = 'audit'`); err != nil {
			t.Fatal(err)
		}
		old.Close()

		s, err := e.open()
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		defer s.Close()
		if rs, err := s.Audit(ctx, api.AuditFilter{VMID: "admin"}); err != nil || len(rs) != 0 {
			t.Errorf("records of VM \"admin\" after the upgrade: %+v, %v; want none", rs, err)
		}
		if rs, err := s.Audit(ctx, api.AuditFilter{}); err != nil || len(rs) != 1 || rs[0].ID != "a1" {
			t.Errorf("records after the upgrade: %+v, %v; want a1", rs, err)
		}
	})
}

// Every list of a docs kind, under every filter, and every filtered list
// of ports finds its rows through an index on the filtered columns rather
// than reading the whole table.
func TestListQueriesUseIndexes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.raw(t, sqlstore.Latest)
		conn, err := s.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		explain, search := "EXPLAIN QUERY PLAN ", "SEARCH %s USING " // SQLite: an index narrows the rows
		if e.driver == "pgx" {
			// An empty table is cheapest to scan; forbid that to see
			// whether an index serves the query.
			if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
				t.Fatal(err)
			}
			explain, search = "EXPLAIN ", "Index"
		}
		for _, lq := range s.ListQueries() {
			p := plan(t, conn, explain+lq.Query, lq.Args)
			t.Logf("%s: %s", lq.Name, p)
			want := strings.ReplaceAll(search, "%s", lq.Table)
			if !strings.Contains(p, want) || strings.Contains(p, "SCAN "+lq.Table) || strings.Contains(p, "Seq Scan") {
				t.Errorf("%s: %s\nplan: %s", lq.Name, lq.Query, p)
			}
			for _, col := range []string{"ref", "active"} { // SQLite: each filter is an index equality
				if e.driver == "sqlite" && strings.Contains(lq.Query, col+" = ") && !strings.Contains(p, col+"=?") {
					t.Errorf("%s: the index does not serve %s: %s", lq.Name, col, p)
				}
			}
		}
	})
}

// plan runs an EXPLAIN and joins the last column of its rows (SQLite's
// detail, PostgreSQL's one column).
func plan(t *testing.T, conn *sql.Conn, query string, args []any) string {
	t.Helper()
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		last := *vals[len(vals)-1].(*any)
		if b, ok := last.([]byte); ok {
			last = string(b)
		}
		lines = append(lines, fmt.Sprint(last))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "; ")
}

package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

func testMigrations(t *testing.T, s store.Store) {
	t0 := now()
	old := api.Migration{ID: "m1", VM: "a", Kind: api.KindLive, State: api.MigCompleted, Source: "h1", Destination: "h2",
		Phases: []api.Phase{{State: api.MigQueued, At: t0}}, CreatedAt: t0.Add(-time.Minute), UpdatedAt: t0}
	cur := api.Migration{ID: "m2", VM: "a", Kind: api.KindCold, State: api.MigQueued, Source: "h2",
		Phases: []api.Phase{{State: api.MigQueued, At: t0}}, CreatedAt: t0, UpdatedAt: t0}
	other := api.Migration{ID: "m3", VM: "b", Kind: api.KindLive, State: api.MigTransferring, Source: "h1", CreatedAt: t0, UpdatedAt: t0,
		Phases: []api.Phase{}}
	for _, m := range []api.Migration{old, cur, other} {
		if err := s.CreateMigration(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateMigration(ctx, old); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("duplicate id: %v; want ErrConflict", err)
	}
	got, err := s.Migration(ctx, "m1")
	if err != nil || got.Kind != api.KindLive || !got.CreatedAt.Equal(old.CreatedAt) || len(got.Phases) != 1 {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	ofA, _ := s.Migrations(ctx, store.MigrationFilter{VM: "a"})
	if len(ofA) != 2 || ofA[0].ID != "m2" {
		t.Errorf("migrations of a = %+v; want m2 then m1 (newest first)", ofA)
	}
	active, _ := s.Migrations(ctx, store.MigrationFilter{Active: true})
	if len(active) != 2 {
		t.Errorf("active migrations = %d; want 2", len(active))
	}
	if _, err := s.UpdateMigration(ctx, "m2", func(m *api.Migration) error { m.State = api.MigRolledBack; return nil }); err != nil {
		t.Fatal(err)
	}
	if active, _ := s.Migrations(ctx, store.MigrationFilter{VM: "a", Active: true}); len(active) != 0 {
		t.Errorf("a has active migrations after the last ended: %+v", active)
	}
	if _, err := s.Migration(ctx, "nope"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("unknown migration: %v", err)
	}
	if _, err := s.UpdateMigration(ctx, "nope", func(*api.Migration) error { return nil }); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("update unknown migration: %v", err)
	}
}

package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/store"
	"github.com/godwit/godwit/internal/store/sqlite"
	"github.com/godwit/godwit/internal/store/storetest"
)

func TestStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "godwit.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Reopening a database keeps its data and applies no migration twice.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "godwit.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateImage(ctx, api.Image{Name: "img", Kind: api.ImageKernel}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.Image(ctx, "img"); err != nil {
		t.Fatalf("image after reopen: %v", err)
	}
}

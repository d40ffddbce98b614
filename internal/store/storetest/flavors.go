package storetest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// Flavors are found by ID or by name, listed by name, unique in both
// (the conflict says which was taken), and deleted by ID.
func testFlavors(t *testing.T, s store.Store) {
	small := api.NamedFlavor{ID: "2", Name: "small", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 512, DiskMiB: 10240},
		Description: "one vCPU", CreatedAt: now()}
	big := api.NamedFlavor{ID: "0c7b6a1e-0000-4000-8000-000000000001", Name: "big", Flavor: api.Flavor{VCPUs: 8, MemoryMiB: 16384}, CreatedAt: now()}
	for _, f := range []api.NamedFlavor{small, big} {
		if err := s.CreateFlavor(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"2", "small"} {
		if got, err := s.Flavor(ctx, key); err != nil || !reflect.DeepEqual(got, small) {
			t.Errorf("flavor %q = %+v, %v; want %+v", key, got, err, small)
		}
	}
	if _, err := s.Flavor(ctx, "medium"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("unknown flavor: %v; want not found", err)
	}
	for _, c := range []struct {
		f    api.NamedFlavor
		says string
	}{
		{api.NamedFlavor{ID: "3", Name: "small", Flavor: small.Flavor}, `flavor name "small" is taken`},
		{api.NamedFlavor{ID: "2", Name: "other", Flavor: small.Flavor}, `flavor id "2" is taken`},
	} {
		if err := s.CreateFlavor(ctx, c.f); !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("create %+v: %v; want a conflict saying %q", c.f, err, c.says)
		}
	}
	fs, err := s.Flavors(ctx)
	if err != nil || len(fs) != 2 || fs[0].Name != "big" || fs[1].Name != "small" {
		t.Fatalf("flavors = %+v, %v; want big and small, by name", fs, err)
	}
	if err := s.DeleteFlavor(ctx, small.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFlavor(ctx, small.ID); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("delete again: %v; want not found", err)
	}
	// The name is free again; so is the ID.
	if err := s.CreateFlavor(ctx, api.NamedFlavor{ID: "2", Name: "small", Flavor: api.Flavor{VCPUs: 2, MemoryMiB: 1024}, CreatedAt: now()}); err != nil {
		t.Errorf("create small again after its delete: %v", err)
	}
	// The name's index holds flavors only: the other kinds in the table
	// share refs (images all have an empty one).
	for _, name := range []string{"big", "small"} {
		if err := s.CreateImage(ctx, api.Image{Name: name, Kind: api.ImageKernel, CreatedAt: now()}); err != nil {
			t.Errorf("image %s beside the flavors: %v", name, err)
		}
	}
}

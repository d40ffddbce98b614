package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// Concurrent creates of flavors whose names and IDs cross: exactly one
// of each clashing pair is made, the others are conflicts, and no name
// is left naming two flavors.
func TestCreateFlavorConcurrent(t *testing.T) {
	c := newTestService(t, Config{})
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errc := make(chan error, 2*n)
	for i := range n {
		for _, req := range []api.CreateFlavorRequest{
			{Name: "small", ID: fmt.Sprint(100 + i), VCPUs: 1, MemoryMiB: 64},   // the same name
			{Name: fmt.Sprintf("f%d", i), ID: "small", VCPUs: 1, MemoryMiB: 64}, // an ID that is that name
		} {
			wg.Go(func() {
				_, err := c.CreateFlavor(ctx, req)
				errc <- err
			})
		}
	}
	wg.Wait()
	close(errc)
	made := 0
	for err := range errc {
		switch {
		case err == nil:
			made++
		case !errors.Is(err, errs.ErrConflict):
			t.Errorf("create: %v; want success or a conflict", err)
		}
	}
	fs, err := c.Flavors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if made != 1 || len(fs) != 1 {
		t.Fatalf("%d creates succeeded, %d flavors stored (%+v); want exactly one", made, len(fs), fs)
	}
	if got, err := c.Flavor(ctx, "small"); err != nil || got != fs[0] {
		t.Errorf("flavor small = %+v, %v; want %+v", got, err, fs[0])
	}
}

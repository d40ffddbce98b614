package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/store"
)

// The cluster's settings read as zero until set; an update changes what
// its fn changes, keeps the rest and survives a reopen of nothing else;
// concurrent first updates both land.
func testClusterSettings(t *testing.T, s store.Store) {
	got, err := s.ClusterSettings(ctx)
	if err != nil || got != (api.ClusterSettings{}) {
		t.Fatalf("settings before any update = %+v, %v; want zero", got, err)
	}
	var wg sync.WaitGroup
	for _, fn := range []func(*api.ClusterSettings){
		func(c *api.ClusterSettings) { c.MaxPerSource = 3 },
		func(c *api.ClusterSettings) { c.BandwidthMBPerS = 200 },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateClusterSettings(ctx, func(c *api.ClusterSettings) error { fn(c); return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err = s.ClusterSettings(ctx)
	if err != nil || got.MaxPerSource != 3 || got.BandwidthMBPerS != 200 || got.UpdatedAt.IsZero() {
		t.Fatalf("settings after two updates = %+v, %v; want max_per_source 3, bandwidth 200, a time", got, err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateClusterSettings(ctx, func(c *api.ClusterSettings) error { c.MaxPerSource = 9; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update whose fn fails: %v; want its error", err)
	}
	if got, _ := s.ClusterSettings(ctx); got.MaxPerSource != 3 {
		t.Errorf("a failed update changed the settings: %+v", got)
	}
}

package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

func testIntents(t *testing.T, s store.Store) {
	t0 := now()
	drain := api.Intent{ID: "i1", Kind: api.IntentDrain, Target: "h1", State: api.IntentRunning,
		Params:     api.IntentParams{OnFailure: api.OnFailureSkip, MaxPerSource: 2},
		Operations: []api.Operation{{VM: "a", Kind: api.OpLive, State: api.OpPending, Source: "h1"}},
		CreatedAt:  t0.Add(-time.Minute), UpdatedAt: t0}
	resize := api.Intent{ID: "i2", Kind: api.IntentResize, Target: "a", State: api.IntentCompleted, CreatedAt: t0, UpdatedAt: t0}
	for _, in := range []api.Intent{drain, resize} {
		if err := s.CreateIntent(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateIntent(ctx, drain); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("duplicate id: %v; want ErrConflict", err)
	}
	got, err := s.Intent(ctx, "i1")
	if err != nil || got.Params.MaxPerSource != 2 || len(got.Operations) != 1 || got.Operations[0].Kind != api.OpLive {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	all, _ := s.Intents(ctx, store.IntentFilter{})
	if len(all) != 2 || all[0].ID != "i2" {
		t.Errorf("intents = %+v; want i2 then i1 (newest first)", all)
	}
	if active, _ := s.Intents(ctx, store.IntentFilter{Active: true}); len(active) != 1 || active[0].ID != "i1" {
		t.Errorf("active intents = %+v; want i1", active)
	}
	if onH1, _ := s.Intents(ctx, store.IntentFilter{Target: "h1"}); len(onH1) != 1 {
		t.Errorf("intents on h1 = %d; want 1", len(onH1))
	}
	if _, err := s.UpdateIntent(ctx, "i1", func(in *api.Intent) error {
		in.Operations[0].State = api.OpDone
		in.State = api.IntentCompleted
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if active, _ := s.Intents(ctx, store.IntentFilter{Active: true}); len(active) != 0 {
		t.Errorf("active intents after the last ended: %+v", active)
	}
	if _, err := s.Intent(ctx, "nope"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("unknown intent: %v", err)
	}
	if _, err := s.UpdateIntent(ctx, "nope", func(*api.Intent) error { return nil }); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("update unknown intent: %v", err)
	}
}

package events_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/events"
	"github.com/godwit/godwit/internal/store"
)

func publish(t *testing.T, h *events.Hub, n int) {
	t.Helper()
	for i := range n {
		if err := h.Publish(api.EventVM, api.EventUpdated, fmt.Sprintf("vm-%d", i), "p", api.VM{Name: fmt.Sprintf("vm-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func seq(t *testing.T, id string) int {
	t.Helper()
	_, s, ok := strings.Cut(id, "-")
	n, err := strconv.Atoi(s)
	if !ok || err != nil {
		t.Fatalf("event ID %q is not EPOCH-SEQ", id)
	}
	return n
}

// A reader from now on sees the events published after it subscribed,
// numbered without gaps, and is woken for each.
func TestSubscribeFromNow(t *testing.T) {
	h := events.NewHub(8)
	publish(t, h, 3)
	s := h.Subscribe("")
	evs, wake := s.Next(100)
	if len(evs) != 0 {
		t.Fatalf("a new reader got %d old events", len(evs))
	}
	publish(t, h, 2)
	select {
	case <-wake:
	default:
		t.Fatal("a publish did not wake the reader")
	}
	evs, _ = s.Next(100)
	if len(evs) != 2 || seq(t, evs[0].ID) != 4 || seq(t, evs[1].ID) != 5 || evs[1].Name != "vm-1" {
		t.Fatalf("events %+v; want seqs 4 and 5", evs)
	}
	if vm, err := evs[0].VM(); err != nil || vm.Name != "vm-0" {
		t.Errorf("the event's object: %+v, %v", vm, err)
	}
	if _, err := evs[0].Migration(); err == nil {
		t.Error("a vm event decoded as a migration")
	}
}

// Resuming after an ID the ring still holds replays what came after it,
// max at a time; an ID it no longer holds, one from another process or
// one never sent gives a reset that carries the newest ID.
func TestResume(t *testing.T) {
	h := events.NewHub(8)
	publish(t, h, 5)
	first := h.Subscribe("")
	publish(t, h, 1)
	evs, _ := first.Next(10)
	id6 := evs[0].ID
	epoch, _, _ := strings.Cut(id6, "-")

	s := h.Subscribe(epoch + "-2")
	evs, _ = s.Next(2)
	if len(evs) != 2 || seq(t, evs[0].ID) != 3 || seq(t, evs[1].ID) != 4 {
		t.Fatalf("resumed after 2, max 2: %+v", evs)
	}
	evs, _ = s.Next(10)
	if len(evs) != 2 || seq(t, evs[1].ID) != 6 {
		t.Fatalf("then: %+v", evs)
	}

	publish(t, h, 10) // 16 published, 9..16 kept
	for _, tt := range []struct{ id, why string }{
		{epoch + "-7", "no longer kept"},
		{"zzz-7", "restarted"},
		{epoch + "-99", "never sent"},
		{"garbage", "not an event ID"},
	} {
		newest := h.LastID()
		s := h.Subscribe(tt.id)
		evs, _ := s.Next(10)
		if len(evs) != 1 || evs[0].Kind != api.EventReset || !strings.Contains(evs[0].Reason, tt.why) || evs[0].ID != newest {
			t.Errorf("resume after %s: %+v; want one reset (%s) with ID %s", tt.id, evs, tt.why, newest)
		}
		publish(t, h, 1)
		if evs, _ := s.Next(10); len(evs) != 1 || evs[0].Kind != api.EventVM {
			t.Errorf("after the reset: %+v; want the next event", evs)
		}
	}

	h = events.NewHub(8)
	publish(t, h, 16)
	epoch, _, _ = strings.Cut(h.LastID(), "-")
	s = h.Subscribe(epoch + "-8") // the one before the oldest kept: nothing is missed
	if evs, _ := s.Next(10); len(evs) != 8 || seq(t, evs[0].ID) != 9 {
		t.Errorf("resume just before the ring: %d events, want 8 from 9", len(evs))
	}
}

// A reader too slow for the ring does not hold writers up: it is
// overtaken and gets a reset, then the events from there on.
func TestSlowReader(t *testing.T) {
	h := events.NewHub(4)
	s := h.Subscribe("")
	publish(t, h, 2)
	if evs, _ := s.Next(1); len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	publish(t, h, 1000) // never blocks
	evs, _ := s.Next(10)
	if len(evs) != 1 || evs[0].Kind != api.EventReset || !strings.Contains(evs[0].Reason, "fell behind") || seq(t, evs[0].ID) != 1002 {
		t.Fatalf("overtaken reader: %+v; want a reset at 1002", evs)
	}
	publish(t, h, 1)
	if evs, _ := s.Next(10); len(evs) != 1 || seq(t, evs[0].ID) != 1003 {
		t.Fatalf("after the reset: %+v", evs)
	}
}

// The store publishes after each successful write, with the object as
// written and its project, and nothing for a failed one.
func TestStorePublishes(t *testing.T) {
	ctx := context.Background()
	h := events.NewHub(0)
	st := events.Wrap(&memStore{vms: map[string]api.VM{}}, h, nil)
	s := h.Subscribe("")
	if err := st.CreateVM(ctx, api.VM{Name: "web", Project: "alpha"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateVM(ctx, "web", func(v *api.VM) error { v.State = api.VMRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateVM(ctx, "web", func(v *api.VM) error { return errors.New("no") }); err == nil {
		t.Fatal("the failing update succeeded")
	}
	if err := st.DeleteVM(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateMigration(ctx, api.Migration{ID: "m1", Project: "beta", State: api.MigQueued}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateIntent(ctx, api.Intent{ID: "i1", Kind: api.IntentDrain}); err != nil {
		t.Fatal(err)
	}
	evs, _ := s.Next(100)
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Kind, e.Action, e.Name, e.Project))
	}
	want := []string{"vm created web alpha", "vm updated web alpha", "vm deleted web alpha", "migration created m1 beta", "intent created i1 "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if vm, err := evs[1].VM(); err != nil || vm.State != api.VMRunning {
		t.Errorf("the update's object: %+v, %v", vm, err)
	}
}

// memStore is the part of a store the decorator test writes to.
type memStore struct {
	store.Store
	vms map[string]api.VM
}

func (m *memStore) CreateVM(_ context.Context, vm api.VM) error { m.vms[vm.Name] = vm; return nil }
func (m *memStore) VM(_ context.Context, name string) (api.VM, error) {
	vm, ok := m.vms[name]
	if !ok {
		return vm, store.VMNotFound(name)
	}
	return vm, nil
}
func (m *memStore) UpdateVM(_ context.Context, name string, fn func(*api.VM) error) (api.VM, error) {
	vm := m.vms[name]
	if err := fn(&vm); err != nil {
		return api.VM{}, err
	}
	m.vms[name] = vm
	return vm, nil
}
func (m *memStore) DeleteVM(_ context.Context, name string) error        { delete(m.vms, name); return nil }
func (m *memStore) CreateMigration(context.Context, api.Migration) error { return nil }
func (m *memStore) CreateIntent(context.Context, api.Intent) error       { return nil }

// Racing updates of one record publish in the order they were written:
// the last event is the record as it stands.
func TestStoreOrdersRacingUpdates(t *testing.T) {
	ctx := context.Background()
	h := events.NewHub(0)
	st := events.Wrap(&memStore{vms: map[string]api.VM{"web": {Name: "web"}}}, h, nil)
	s := h.Subscribe("")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := st.UpdateVM(ctx, "web", func(v *api.VM) error { v.PID++; return nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	evs, _ := s.Next(1000)
	if len(evs) != 400 {
		t.Fatalf("%d events, want 400", len(evs))
	}
	for i, e := range evs {
		vm, err := e.VM()
		if err != nil || vm.PID != i+1 {
			t.Fatalf("event %d shows PID %d (%v); want %d: published out of the order written", i, vm.PID, err, i+1)
		}
	}
}

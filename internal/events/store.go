package events

import (
	"context"
	"log/slog"
	"sync"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/store"
)

// Store is a store.Store that publishes an event to its Hub after each
// successful write of a VM, a migration or an intent: the one place all
// of them pass, so no change is missed whichever level made it.
type Store struct {
	store.Store
	hub *Hub
	log *slog.Logger

	// Writes of one record are made one at a time, write and publish
	// together, so that its events come in the order its writes were
	// committed (two racing updates could otherwise publish the older
	// state last). The store writes one record at a time anyway.
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int
}

// Wrap returns st publishing to hub.
func Wrap(st store.Store, hub *Hub, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	return &Store{Store: st, hub: hub, log: log, locks: map[string]*keyLock{}}
}

// Hub is where the store publishes.
func (s *Store) Hub() *Hub { return s.hub }

// lock takes the write lock of one record; the func releases it.
func (s *Store) lock(kind api.EventKind, name string) func() {
	key := string(kind) + "/" + name
	s.mu.Lock()
	l := s.locks[key]
	if l == nil {
		l = &keyLock{}
		s.locks[key] = l
	}
	l.users++
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
}

func (s *Store) publish(kind api.EventKind, action api.EventAction, name, project string, obj any) {
	// The write is done: a failure to encode its event must not undo it.
	if err := s.hub.Publish(kind, action, name, project, obj); err != nil {
		s.log.Error("event not published", "kind", kind, "name", name, "err", err)
	}
}

func (s *Store) CreateVM(ctx context.Context, vm api.VM) error {
	defer s.lock(api.EventVM, vm.Name)()
	err := s.Store.CreateVM(ctx, vm)
	if err == nil {
		s.publish(api.EventVM, api.EventCreated, vm.Name, vm.Project, vm)
	}
	return err
}

func (s *Store) UpdateVM(ctx context.Context, name string, fn func(*api.VM) error) (api.VM, error) {
	defer s.lock(api.EventVM, name)()
	vm, err := s.Store.UpdateVM(ctx, name, fn)
	if err == nil {
		s.publish(api.EventVM, api.EventUpdated, vm.Name, vm.Project, vm)
	}
	return vm, err
}

// DeleteVM publishes the VM as it was last, for its project and for
// followers who want to know where it was.
func (s *Store) DeleteVM(ctx context.Context, name string) error {
	defer s.lock(api.EventVM, name)()
	vm, rerr := s.Store.VM(ctx, name)
	if rerr != nil {
		vm = api.VM{Name: name}
	}
	err := s.Store.DeleteVM(ctx, name)
	if err == nil {
		s.publish(api.EventVM, api.EventDeleted, name, vm.Project, vm)
	}
	return err
}

func (s *Store) CreateMigration(ctx context.Context, m api.Migration) error {
	defer s.lock(api.EventMigration, m.ID)()
	err := s.Store.CreateMigration(ctx, m)
	if err == nil {
		s.publish(api.EventMigration, api.EventCreated, m.ID, m.Project, m)
	}
	return err
}

func (s *Store) UpdateMigration(ctx context.Context, id string, fn func(*api.Migration) error) (api.Migration, error) {
	defer s.lock(api.EventMigration, id)()
	m, err := s.Store.UpdateMigration(ctx, id, fn)
	if err == nil {
		s.publish(api.EventMigration, api.EventUpdated, m.ID, m.Project, m)
	}
	return m, err
}

func (s *Store) CreateIntent(ctx context.Context, in api.Intent) error {
	defer s.lock(api.EventIntent, in.ID)()
	err := s.Store.CreateIntent(ctx, in)
	if err == nil {
		s.publish(api.EventIntent, api.EventCreated, in.ID, in.Project, in)
	}
	return err
}

func (s *Store) UpdateIntent(ctx context.Context, id string, fn func(*api.Intent) error) (api.Intent, error) {
	defer s.lock(api.EventIntent, id)()
	in, err := s.Store.UpdateIntent(ctx, id, fn)
	if err == nil {
		s.publish(api.EventIntent, api.EventUpdated, in.ID, in.Project, in)
	}
	return in, err
}

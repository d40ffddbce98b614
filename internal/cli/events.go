package cli

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/godwit/godwit/api"
)

// How watches learn of changes: from the controller's event stream
// (GET /v1/events), which sends each change with the whole object as it
// happens; against a controller from before the stream (404), by reading
// the object every a.poll. Either way a feed's first state is read at
// once, after the stream is open, so no change is missed between the two.

// subscribe opens the event stream; nil, nil from a controller without
// one.
func (a *app) subscribe(ctx context.Context, c *api.Client, f api.EventFilter) (*api.EventStream, error) {
	st, err := c.Events(ctx, f, "")
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	return st, err
}

// nextEvent waits for the stream's next event: an error when ctx ends or
// the stream fails for good.
func nextEvent(ctx context.Context, st *api.EventStream) (api.Event, error) {
	select {
	case <-ctx.Done():
		return api.Event{}, ctx.Err()
	case e, ok := <-st.C:
		if ok {
			return e, nil
		}
		if err := st.Err(); err != nil {
			return api.Event{}, err
		}
		if ctx.Err() != nil {
			return api.Event{}, ctx.Err()
		}
		return api.Event{}, errors.New("the controller's event stream ended")
	}
}

// pause waits a poll interval, or until ctx ends.
func (a *app) pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(a.poll):
		return nil
	}
}

// migrationFeed gives a migration's successive states.
type migrationFeed struct {
	a    *app
	c    *api.Client
	id   string
	st   *api.EventStream // nil: polling
	read bool             // the first state was read
	cur  api.Migration
}

func (a *app) followMigration(ctx context.Context, id string) (*migrationFeed, error) {
	c := a.client()
	st, err := a.subscribe(ctx, c, api.EventFilter{Kinds: []api.EventKind{api.EventMigration}, Names: []string{id}})
	if err != nil {
		return nil, err
	}
	return &migrationFeed{a: a, c: c, id: id, st: st}, nil
}

// close ends the stream.
func (f *migrationFeed) close() {
	if f.st != nil {
		f.st.Close()
	}
}

// next returns the migration as it is first, then after each change.
func (f *migrationFeed) next(ctx context.Context) (api.Migration, error) {
	if !f.read || f.st == nil {
		if f.read {
			if err := f.a.pause(ctx); err != nil {
				return api.Migration{}, err
			}
		}
		f.read = true
		return f.reread(ctx)
	}
	for {
		e, err := nextEvent(ctx, f.st)
		switch {
		case err != nil:
			return api.Migration{}, err
		case e.Kind == api.EventReset: // changes were missed
			return f.reread(ctx)
		case e.Kind == api.EventMigration && e.Name == f.id:
			m, err := e.Migration()
			if err != nil || !m.UpdatedAt.Before(f.cur.UpdatedAt) {
				f.cur = m
				return m, err
			}
		}
	}
}

// reread reads the migration; events older than it are passed over
// (those published between the subscription and the read).
func (f *migrationFeed) reread(ctx context.Context) (api.Migration, error) {
	m, err := f.c.Migration(ctx, f.id)
	if err == nil {
		f.cur = m
	}
	return m, err
}

// intentFeed gives an intent's successive states, and the records of its
// running migrations (for their progress): a new state whenever the
// intent or one of them changes.
type intentFeed struct {
	a    *app
	c    *api.Client
	id   string
	st   *api.EventStream // nil: polling
	read bool             // the first state was read

	cur  api.Intent
	migs map[string]api.Migration // by ID, from events or read
	// tried are the migrations read or heard of: one that cannot be read
	// is not asked for again (its line shows the operation only).
	tried map[string]bool
}

func (a *app) followIntentFeed(ctx context.Context, id string) (*intentFeed, error) {
	c := a.client()
	st, err := a.subscribe(ctx, c, api.EventFilter{Kinds: []api.EventKind{api.EventIntent, api.EventMigration}})
	if err != nil {
		return nil, err
	}
	return &intentFeed{a: a, c: c, id: id, st: st}, nil
}

// close ends the stream.
func (f *intentFeed) close() {
	if f.st != nil {
		f.st.Close()
	}
}

func (f *intentFeed) next(ctx context.Context) (api.Intent, map[string]api.Migration, error) {
	if !f.read || f.st == nil {
		if f.read {
			if err := f.a.pause(ctx); err != nil {
				return api.Intent{}, nil, err
			}
		}
		return f.reread(ctx)
	}
	for {
		e, err := nextEvent(ctx, f.st)
		if err != nil {
			return api.Intent{}, nil, err
		}
		switch {
		case e.Kind == api.EventReset: // changes were missed
			return f.reread(ctx)
		case e.Kind == api.EventIntent && e.Name == f.id:
			in, err := e.Intent()
			if err != nil {
				return api.Intent{}, nil, err
			}
			if in.UpdatedAt.Before(f.cur.UpdatedAt) {
				continue // older than what was read
			}
			f.cur = in
			f.readMissing(ctx)
			return f.cur, f.migs, nil
		case e.Kind == api.EventMigration:
			m, err := e.Migration()
			if err != nil {
				return api.Intent{}, nil, err
			}
			if old, ok := f.migs[e.Name]; ok && m.UpdatedAt.Before(old.UpdatedAt) {
				continue
			}
			f.tried[e.Name] = true
			if e.Action == api.EventDeleted {
				delete(f.migs, e.Name)
			} else {
				f.migs[e.Name] = m
			}
			if f.running(e.Name) {
				return f.cur, f.migs, nil
			}
		}
	}
}

// reread reads the intent and its running migrations afresh.
func (f *intentFeed) reread(ctx context.Context) (api.Intent, map[string]api.Migration, error) {
	in, err := f.c.Intent(ctx, f.id)
	if err != nil {
		return in, nil, err
	}
	f.read, f.cur, f.migs, f.tried = true, in, map[string]api.Migration{}, map[string]bool{}
	f.readMissing(ctx)
	return in, f.migs, nil
}

// readMissing reads the running operations' migrations not yet known.
func (f *intentFeed) readMissing(ctx context.Context) {
	for _, op := range f.cur.Operations {
		if op.State != api.OpRunning || op.MigrationID == "" || f.tried[op.MigrationID] {
			continue
		}
		f.tried[op.MigrationID] = true
		if m, err := f.c.Migration(ctx, op.MigrationID); err == nil {
			f.migs[op.MigrationID] = m
		}
	}
}

// running reports whether migration id is a running operation's.
func (f *intentFeed) running(id string) bool {
	for _, op := range f.cur.Operations {
		if op.State == api.OpRunning && op.MigrationID == id {
			return true
		}
	}
	return false
}

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/godwit/godwit/internal/errs"
)

// docs is one kind of record in the documents table: each record a JSON
// document under (kind, id), beside the columns its queries filter and
// sort on (ref, active, created_at), which index derives from the record
// on every write. Migrations, intents and images are kinds.
type docs[T any] struct {
	s    *Store
	kind string // the documents.kind of its rows, and its name in errors
	// quote names a record as kind "id" in errors rather than kind id.
	quote bool
	hint  string // added to get's not-found error: how to list them
	order string // list's ORDER BY
	index func(*T) index
	// stamp, after an update's fn, puts back the id (fn may not change
	// it) and sets the time of the update.
	stamp func(v *T, id string, now time.Time)
	// conflict, for a kind with a unique key besides its id, makes
	// create's error for a unique violation err, saying which key.
	conflict func(err error, v *T) error
}

// index is what the documents table keeps of a record beside its
// document. A kind without a filter or a time order leaves those zero.
type index struct {
	id      string
	ref     string // what the kind's filter matches: a migration's VM, an intent's target, a flavor's name, an audit record's VM ID
	active  bool   // not yet in a final state
	created int64  // creation time, Unix nanoseconds
}

// filter narrows a list. Empty fields match everything.
type filter struct {
	ref    string
	active bool
}

// Orders for docs.order.
const (
	newestFirst = "created_at DESC, id"
	byID        = "id"
	byRef       = "ref, id"
)

const selectDoc = `SELECT doc FROM documents WHERE kind = ? AND id = ?`

// name names a record in errors.
func (d *docs[T]) name(id string) string {
	if d.quote {
		return fmt.Sprintf("%s %q", d.kind, id)
	}
	return d.kind + " " + id
}

// create inserts a record; ErrConflict when its id is taken.
func (d *docs[T]) create(ctx context.Context, v T) error {
	ix := d.index(&v)
	_, err := d.s.db.ExecContext(ctx, d.s.q(`INSERT INTO documents (kind, id, ref, active, created_at, doc) VALUES (?, ?, ?, ?, ?, ?)`),
		d.kind, ix.id, ix.ref, ix.active, ix.created, encode(v))
	if err != nil && d.s.d.IsUnique(err) {
		if d.conflict != nil {
			return d.conflict(err, &v)
		}
		return errs.Conflict("%s already exists", d.name(ix.id))
	}
	return err
}

// get reads one record.
func (d *docs[T]) get(ctx context.Context, id string) (T, error) {
	return one[T](ctx, d.s, d.s.db, notFound("%s not found%s", d.name(id), d.hint), selectDoc, d.kind, id)
}

// listQuery is list's query: every filter it takes is on indexed columns
// (documents_ref, documents_active), none reads the documents.
func (d *docs[T]) listQuery(f filter) (string, []any) {
	q := `SELECT doc FROM documents WHERE kind = ?`
	args := []any{d.kind}
	if f.ref != "" {
		q += ` AND ref = ?`
		args = append(args, f.ref)
	}
	if f.active {
		q += ` AND active = ?`
		args = append(args, true)
	}
	return q + ` ORDER BY ` + d.order, args
}

// list reads the records that f matches, in the kind's order.
func (d *docs[T]) list(ctx context.Context, f filter) ([]T, error) {
	q, args := d.listQuery(f)
	return list[T](ctx, d.s, d.s.db, q, args...)
}

// update reads a record, applies fn and writes it back in one
// transaction; fn's error aborts it and is returned as is.
func (d *docs[T]) update(ctx context.Context, id string, fn func(*T) error) (T, error) {
	return modify(ctx, d.s, notFound("%s not found%s", d.name(id), d.hint), selectDoc, []any{d.kind, id}, fn,
		func(tx *sql.Tx, v *T) error {
			if d.stamp != nil {
				d.stamp(v, id, time.Now().UTC())
			}
			ix := d.index(v)
			_, err := tx.ExecContext(ctx, d.s.q(`UPDATE documents SET ref = ?, active = ?, created_at = ?, doc = ? WHERE kind = ? AND id = ?`),
				ix.ref, ix.active, ix.created, encode(*v), d.kind, id)
			return err
		})
}

// remove deletes a record inside tx.
func (d *docs[T]) remove(ctx context.Context, tx *sql.Tx, id string) error {
	res, err := tx.ExecContext(ctx, d.s.q(`DELETE FROM documents WHERE kind = ? AND id = ?`), d.kind, id)
	return deleted(res, err, notFound("%s not found", d.name(id)))
}

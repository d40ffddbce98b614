package sqlstore

import (
	"context"
	"database/sql"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// VMs keep a table of their own rather than being a kind of docs: a VM
// has two unique keys (id and name), three columns that filters and
// DeleteImage's check read (host, project, image), and its name, not its
// id, is the key the API uses.

// CreateVM implements store.Store.
func (s *Store) CreateVM(ctx context.Context, vm api.VM) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO vms (id, name, host, project, image, doc) VALUES (?, ?, ?, ?, ?, ?)`),
		vm.ID, vm.Name, vm.Host, vm.Project, vm.Image, encode(vm))
	if err != nil && s.d.IsUnique(err) {
		return errs.Conflict("vm %q already exists", vm.Name)
	}
	return err
}

// VM implements store.Store.
func (s *Store) VM(ctx context.Context, name string) (api.VM, error) {
	return one[api.VM](ctx, s, s.db, func() error { return store.VMNotFound(name) }, `SELECT doc FROM vms WHERE name = ?`, name)
}

// VMs implements store.Store.
func (s *Store) VMs(ctx context.Context, f store.VMFilter) ([]api.VM, error) {
	q := `SELECT doc FROM vms WHERE 1 = 1`
	var args []any
	if f.ID != "" {
		q += ` AND id = ?`
		args = append(args, f.ID)
	}
	if f.Host != "" {
		q += ` AND host = ?`
		args = append(args, f.Host)
	}
	if f.Project != "" {
		q += ` AND project = ?`
		args = append(args, f.Project)
	}
	return list[api.VM](ctx, s, s.db, q+` ORDER BY name`, args...)
}

// UpdateVM implements store.Store.
func (s *Store) UpdateVM(ctx context.Context, name string, fn func(*api.VM) error) (api.VM, error) {
	return modify(ctx, s, func() error { return store.VMNotFound(name) }, `SELECT doc FROM vms WHERE name = ?`, []any{name}, fn,
		func(tx *sql.Tx, vm *api.VM) error {
			vm.Name = name // the name is the key; fn may not change it
			vm.UpdatedAt = time.Now().UTC()
			_, err := tx.ExecContext(ctx, s.q(`UPDATE vms SET host = ?, project = ?, image = ?, doc = ? WHERE name = ?`),
				vm.Host, vm.Project, vm.Image, encode(*vm), name)
			return err
		})
}

// DeleteVM implements store.Store.
func (s *Store) DeleteVM(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM vms WHERE name = ?`), name)
	return deleted(res, err, func() error { return store.VMNotFound(name) })
}

// imageIndex files an image by name alone: images have no filter and
// are listed by name.
func imageIndex(im *api.Image) index { return index{id: im.Name} }

// CreateImage implements store.Store.
func (s *Store) CreateImage(ctx context.Context, im api.Image) error {
	return s.images.create(ctx, im)
}

// Image implements store.Store.
func (s *Store) Image(ctx context.Context, name string) (api.Image, error) {
	return s.images.get(ctx, name)
}

// Images implements store.Store.
func (s *Store) Images(ctx context.Context) ([]api.Image, error) {
	return s.images.list(ctx, filter{})
}

// DeleteImage implements store.Store.
func (s *Store) DeleteImage(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT name FROM vms WHERE image = ?`), name)
		if err != nil {
			return err
		}
		var users []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			users = append(users, n)
		}
		rows.Close()
		if len(users) > 0 {
			what, them := vmList(users)
			return errs.Conflict("image %q is used by %s; delete %s or rebuild %s from another image first", name, what, them, them)
		}
		return s.images.remove(ctx, tx, name)
	})
}

// namedVMs is how many VMs an in-use conflict names before "and N more".
const namedVMs = 5

// vmList names VMs for a message, sorted, the first few of many only
// ("vm a", "vms a, b and c", "vms a, b, c, d, e and 7 more"), and the
// pronoun that refers to them.
func vmList(names []string) (what, them string) {
	sort.Strings(names)
	switch {
	case len(names) == 1:
		return "vm " + names[0], "it"
	case len(names) > namedVMs:
		return "vms " + strings.Join(names[:namedVMs], ", ") + " and " + strconv.Itoa(len(names)-namedVMs) + " more", "them"
	}
	return "vms " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1], "them"
}

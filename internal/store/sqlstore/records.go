package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

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
	var doc string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT doc FROM vms WHERE name = ?`), name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return api.VM{}, errs.NotFound("vm %q not found", name)
	}
	if err != nil {
		return api.VM{}, err
	}
	return decode[api.VM](doc)
}

// VMs implements store.Store.
func (s *Store) VMs(ctx context.Context, f store.VMFilter) ([]api.VM, error) {
	q := `SELECT doc FROM vms WHERE 1 = 1`
	var args []any
	if f.Host != "" {
		q += ` AND host = ?`
		args = append(args, f.Host)
	}
	if f.Project != "" {
		q += ` AND project = ?`
		args = append(args, f.Project)
	}
	return list[api.VM](ctx, s, q+` ORDER BY name`, args...)
}

// UpdateVM implements store.Store.
func (s *Store) UpdateVM(ctx context.Context, name string, fn func(*api.VM) error) (api.VM, error) {
	var vm api.VM
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var doc string
		err := tx.QueryRowContext(ctx, s.q(`SELECT doc FROM vms WHERE name = ?`+s.d.ForUpdate), name).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("vm %q not found", name)
		}
		if err != nil {
			return err
		}
		if vm, err = decode[api.VM](doc); err != nil {
			return err
		}
		if err := fn(&vm); err != nil {
			return err
		}
		vm.Name = name // the name is the key; fn may not change it
		vm.UpdatedAt = time.Now().UTC()
		_, err = tx.ExecContext(ctx, s.q(`UPDATE vms SET host = ?, project = ?, image = ?, doc = ? WHERE name = ?`),
			vm.Host, vm.Project, vm.Image, encode(vm), name)
		return err
	})
	return vm, err
}

// DeleteVM implements store.Store.
func (s *Store) DeleteVM(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM vms WHERE name = ?`), name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.NotFound("vm %q not found", name)
	}
	return nil
}

// CreateImage implements store.Store.
func (s *Store) CreateImage(ctx context.Context, im api.Image) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO images (name, doc) VALUES (?, ?)`), im.Name, encode(im))
	if err != nil && s.d.IsUnique(err) {
		return errs.Conflict("image %q already exists", im.Name)
	}
	return err
}

// Image implements store.Store.
func (s *Store) Image(ctx context.Context, name string) (api.Image, error) {
	var doc string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT doc FROM images WHERE name = ?`), name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Image{}, errs.NotFound("image %q not found", name)
	}
	if err != nil {
		return api.Image{}, err
	}
	return decode[api.Image](doc)
}

// Images implements store.Store.
func (s *Store) Images(ctx context.Context) ([]api.Image, error) {
	return list[api.Image](ctx, s, `SELECT doc FROM images ORDER BY name`)
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
			sort.Strings(users)
			return errs.Conflict("image %q is used by vm %s; delete or rebuild them first", name, strings.Join(users, ", "))
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM images WHERE name = ?`), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFound("image %q not found", name)
		}
		return nil
	})
}

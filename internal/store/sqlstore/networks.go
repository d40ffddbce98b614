package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// Networks and ports keep tables of their own (schema version 5): what
// makes an address unique, or a network impossible to delete under its
// ports, is a constraint of the database, which holds under any
// concurrency, on both engines and across controllers; the code only
// turns the violations into errors that say what was taken.

// uniqueKey is one of the schema's unique keys as the engines name it in
// a violation: PostgreSQL by the constraint's name, SQLite by its columns.
type uniqueKey struct{ name, columns string }

var (
	portIDKey    = uniqueKey{"ports_pkey", "ports.id"}
	portMACKey   = uniqueKey{"ports_mac_key", "ports.mac"}
	portIPKey    = uniqueKey{"ports_network_ip_key", "ports.network, ports.ip"}
	portIndexKey = uniqueKey{"ports_vm_idx_key", "ports.vm_id, ports.idx"}
)

// violates reports whether err is a violation of the unique key k.
func (s *Store) violates(err error, k uniqueKey) bool {
	if err == nil {
		return false
	}
	got := s.d.UniqueKey(err)
	return got != "" && (got == k.name || got == k.columns)
}

// selectNetwork selects a network's document and its count of ports.
const selectNetwork = `SELECT doc, (SELECT COUNT(*) FROM ports WHERE ports.network = networks.name) FROM networks`

// CreateNetwork implements store.Store.
func (s *Store) CreateNetwork(ctx context.Context, n api.Network) error {
	n.Ports = 0 // counted on read
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO networks (name, doc) VALUES (?, ?)`), n.Name, encode(n))
	if err != nil && s.d.IsUnique(err) {
		return errs.Conflict("network %q already exists", n.Name)
	}
	return err
}

// Network implements store.Store.
func (s *Store) Network(ctx context.Context, name string) (api.Network, error) {
	ns, err := s.networks(ctx, selectNetwork+` WHERE name = ?`, name)
	if err != nil {
		return api.Network{}, err
	}
	if len(ns) == 0 {
		return api.Network{}, errs.NotFound("network %q not found", name)
	}
	return ns[0], nil
}

// Networks implements store.Store.
func (s *Store) Networks(ctx context.Context) ([]api.Network, error) {
	return s.networks(ctx, selectNetwork+` ORDER BY name`)
}

// networks decodes the networks that query (a selectNetwork) selects.
func (s *Store) networks(ctx context.Context, query string, args ...any) ([]api.Network, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []api.Network{}
	for rows.Next() {
		var doc string
		var ports int
		if err := rows.Scan(&doc, &ports); err != nil {
			return nil, err
		}
		n, err := decode[api.Network](doc)
		if err != nil {
			return nil, err
		}
		n.Ports = ports
		out = append(out, n)
	}
	return out, rows.Err()
}

// DeleteNetwork implements store.Store.
//
// It locks the network's row first: on PostgreSQL that waits for the
// ports being created on it (their foreign key check holds a share lock
// on the row) and holds off any new one until the delete commits; SQLite
// runs one writing transaction at a time anyway.
func (s *Store) DeleteNetwork(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var found string
		err := tx.QueryRowContext(ctx, s.q(`SELECT name FROM networks WHERE name = ?`+s.d.ForUpdate), name).Scan(&found)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("network %q not found", name)
		}
		if err != nil {
			return err
		}
		users, err := strs(ctx, tx, s.q(`SELECT DISTINCT vm_id FROM ports WHERE network = ? ORDER BY vm_id`), name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return inUse(name, users)
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM networks WHERE name = ?`), name)
		if err != nil && s.d.IsForeignKey(err) {
			// The lock makes this unreachable; the database has the last word.
			return errs.Conflict("network %q is used by ports", name)
		}
		return err
	})
}

// inUse is DeleteNetwork's refusal; it names the VMs by ID, for the
// service to name them to the user.
func inUse(network string, vmIDs []string) error {
	return errs.Conflict("network %q is used by ports of vm %s; delete them first", network, strings.Join(vmIDs, ", "))
}

// errRetry asks CreatePorts to run its transaction again.
var errRetry = errors.New("retry")

// maxPortRetries bounds CreatePorts' attempts. An attempt loses its
// numbers only to another CreatePorts for the same VM that commits
// while it runs, so it runs at most once more than there are such
// others; a VM's ports are created by one request in practice.
const maxPortRetries = 100

// CreatePorts implements store.Store.
//
// Each port is numbered after the last of its VM's ports (idx); when a
// concurrent CreatePorts for the same VM took the same numbers first
// (PostgreSQL; SQLite runs one writer at a time), the unique key on
// (vm_id, idx) refuses the second and it runs again with fresh numbers.
// It also runs again after a deadlock: two batches that take the same
// two addresses in opposite orders each wait for the other.
func (s *Store) CreatePorts(ctx context.Context, ports []api.Port) error {
	if len(ports) == 0 {
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := s.tx(ctx, func(tx *sql.Tx) error { return s.insertPorts(ctx, tx, ports) })
		if !errors.Is(err, errRetry) {
			return err
		}
		if attempt == maxPortRetries {
			return errs.Conflict("ports of vm %s are being created concurrently; try again", ports[0].VMID)
		}
	}
}

// insertPorts inserts ports inside tx, one statement each, so that a
// violation names the port that caused it.
func (s *Store) insertPorts(ctx context.Context, tx *sql.Tx, ports []api.Port) error {
	next := map[string]int{} // a VM's next idx
	for _, p := range ports {
		idx, ok := next[p.VMID]
		if !ok {
			err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(idx) + 1, 0) FROM ports WHERE vm_id = ?`), p.VMID).Scan(&idx)
			if err != nil {
				return err
			}
		}
		next[p.VMID] = idx + 1
		var ip any // NULL when empty: no address, nothing to keep unique
		if p.IP != "" {
			ip = p.IP
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO ports (id, network, vm_id, idx, mac, ip, doc) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			p.ID, p.Network, p.VMID, idx, p.MAC, ip, encode(p))
		if err != nil {
			return s.portError(err, p)
		}
	}
	return nil
}

// portError turns the violation that inserting p caused into the error
// that says what is missing or taken.
func (s *Store) portError(err error, p api.Port) error {
	switch {
	case s.d.IsForeignKey(err):
		return errs.NotFound("network %q not found", p.Network)
	case s.violates(err, portMACKey):
		return errs.Conflict("mac %s is taken", p.MAC)
	case s.violates(err, portIPKey):
		return errs.Conflict("address %s is taken on network %s", p.IP, p.Network)
	case s.violates(err, portIDKey):
		return errs.Conflict("port %s already exists", p.ID)
	case s.violates(err, portIndexKey), s.d.IsTransient(err):
		return errRetry
	case s.d.IsUnique(err):
		return fmt.Errorf("create port %s: %w: %v", p.ID, errs.ErrConflict, err)
	}
	return fmt.Errorf("create port %s: %w", p.ID, err)
}

// Ports implements store.Store.
func (s *Store) Ports(ctx context.Context, f store.PortFilter) ([]api.Port, error) {
	q, args := portsQuery(f)
	return list[api.Port](ctx, s, s.db, q, args...)
}

// portsQuery is Ports' query: a filter on the network is served by the
// key on (network, ip), one on the VM by the key on (vm_id, idx), which
// is also the order.
func portsQuery(f store.PortFilter) (string, []any) {
	q := `SELECT doc FROM ports WHERE 1 = 1`
	var args []any
	if f.Network != "" {
		q += ` AND network = ?`
		args = append(args, f.Network)
	}
	if f.VMID != "" {
		q += ` AND vm_id = ?`
		args = append(args, f.VMID)
	}
	return q + ` ORDER BY vm_id, idx`, args
}

// DeletePorts implements store.Store.
func (s *Store) DeletePorts(ctx context.Context, vmID string) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM ports WHERE vm_id = ?`), vmID)
	return err
}

// strs reads the one string column that query (with the dialect's
// placeholders) selects.
func strs(ctx context.Context, q queryer, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/godwit/godwit/api"
)

// migrations are applied in order, each once; append, never edit.
var migrations = []string{
	1: `CREATE TABLE hosts (
		name TEXT PRIMARY KEY,
		state TEXT NOT NULL,
		enabled BOOLEAN NOT NULL,
		last_heartbeat BIGINT NOT NULL,
		doc TEXT NOT NULL
	);
	CREATE TABLE vms (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		host TEXT NOT NULL,
		project TEXT NOT NULL,
		image TEXT NOT NULL,
		doc TEXT NOT NULL
	);
	CREATE INDEX vms_host ON vms (host);
	CREATE INDEX vms_image ON vms (image);
	CREATE TABLE images (
		name TEXT PRIMARY KEY,
		doc TEXT NOT NULL
	)`,
	2: `CREATE TABLE migrations (
		id TEXT PRIMARY KEY,
		vm TEXT NOT NULL,
		active BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		doc TEXT NOT NULL
	);
	CREATE INDEX migrations_vm ON migrations (vm, active)`,
	3: `CREATE TABLE intents (
		id TEXT PRIMARY KEY,
		target TEXT NOT NULL,
		active BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		doc TEXT NOT NULL
	);
	CREATE INDEX intents_active ON intents (active)`,
	// 4: one table for every kind kept through docs (migrations, intents,
	// images): the rows of the three tables move over unchanged, their
	// filter column (a migration's vm, an intent's target) becoming ref.
	// Images have neither a filter nor a time order: ref, active and
	// created_at stay zero for them, as docs writes them.
	4: `CREATE TABLE documents (
		kind TEXT NOT NULL,
		id TEXT NOT NULL,
		ref TEXT NOT NULL,
		active BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		doc TEXT NOT NULL,
		PRIMARY KEY (kind, id)
	);
	CREATE INDEX documents_ref ON documents (kind, ref, active, created_at);
	CREATE INDEX documents_active ON documents (kind, active, created_at);
	INSERT INTO documents (kind, id, ref, active, created_at, doc)
		SELECT 'migration', id, vm, active, created_at, doc FROM migrations;
	INSERT INTO documents (kind, id, ref, active, created_at, doc)
		SELECT 'intent', id, target, active, created_at, doc FROM intents;
	INSERT INTO documents (kind, id, ref, active, created_at, doc)
		SELECT 'image', name, '', FALSE, 0, doc FROM images;
	DROP TABLE migrations;
	DROP TABLE intents;
	DROP TABLE images`,
	// 5: networks and their ports (VM NICs). The database itself keeps a
	// port's MAC unique in the cluster and its IP unique in its network,
	// and keeps a port's network there: a network with ports cannot be
	// deleted, a port cannot be created on a network that is gone (SQLite
	// enforces foreign keys only with PRAGMA foreign_keys on, which every
	// connection of sqlite.Open sets). idx orders a VM's ports as they
	// were created. An empty ip is stored as NULL, which no unique key
	// compares equal to another. The constraints are named for the
	// errors PostgreSQL reports (uniqueKey).
	5: `CREATE TABLE networks (
		name TEXT PRIMARY KEY,
		doc TEXT NOT NULL
	);
	CREATE TABLE ports (
		id TEXT NOT NULL,
		network TEXT NOT NULL,
		vm_id TEXT NOT NULL,
		idx INTEGER NOT NULL,
		mac TEXT NOT NULL,
		ip TEXT,
		doc TEXT NOT NULL,
		CONSTRAINT ports_pkey PRIMARY KEY (id),
		CONSTRAINT ports_network_fkey FOREIGN KEY (network) REFERENCES networks (name),
		CONSTRAINT ports_mac_key UNIQUE (mac),
		CONSTRAINT ports_network_ip_key UNIQUE (network, ip),
		CONSTRAINT ports_vm_idx_key UNIQUE (vm_id, idx)
	)`,
	// 6: a VM records the checksum of its image's disk (api.VM.
	// ImageSHA256), a field of its document: no statement, a backfill
	// (recordImageChecksums) for the VMs recorded before.
	6: ``,
	// 7: stored flavors (api.NamedFlavor), a docs kind: id is the
	// flavor's ID, ref its name, which this index keeps unique among
	// flavors as the primary key keeps their IDs (flavorNameKey).
	7: `CREATE UNIQUE INDEX documents_flavor_name ON documents (ref) WHERE kind = 'flavor'`,
	// 8: an audit record's ref is the VM it acted on (api.AuditRecord.
	// VMID), which GET /v1/audit?vm_id= and Nova's instance actions
	// filter on. It was the caller (Who), which no query read; the
	// records from before name no VM.
	8: `UPDATE documents SET ref = '' WHERE kind = 'audit'`,
}

// backfills are migrations' steps in Go, run in the migration's
// transaction after its statements: changes to documents that SQL common
// to both engines cannot make.
var backfills = map[int]func(ctx context.Context, s *Store, tx *sql.Tx) error{
	6: recordImageChecksums,
}

// recordImageChecksums gives every VM recorded before schema 6 the
// checksum of its image's disk file, as the image holds it now: an image
// cannot be deleted while a VM uses it, so that is the one the VM's disk
// was made from. A VM whose image has no disk (or is gone) gets none.
// Only the new key is added to a document; every other value stays as
// it was written.
func recordImageChecksums(ctx context.Context, s *Store, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT v.id, v.doc, i.doc FROM vms v JOIN documents i ON i.kind = 'image' AND i.id = v.image`))
	if err != nil {
		return err
	}
	type update struct{ id, doc string }
	var updates []update
	for rows.Next() {
		var id, vmDoc, imDoc string
		if err := rows.Scan(&id, &vmDoc, &imDoc); err != nil {
			rows.Close()
			return err
		}
		im, err := decode[api.Image](imDoc)
		if err != nil {
			rows.Close()
			return err
		}
		f, ok := im.File(api.RoleDisk)
		if !ok {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal([]byte(vmDoc), &fields); err != nil {
			rows.Close()
			return fmt.Errorf("decode stored vm %s: %w", id, err)
		}
		if _, done := fields["image_sha256"]; done {
			continue
		}
		fields["image_sha256"], _ = json.Marshal(f.SHA256)
		updates = append(updates, update{id, encode(fields)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, u := range updates {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE vms SET doc = ? WHERE id = ?`), u.doc, u.id); err != nil {
			return err
		}
	}
	return nil
}

// migrate applies the schema migrations after the database's version, up
// to and including version upTo, each in its own transaction.
func (s *Store) migrate(ctx context.Context, upTo int) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for v := int(have.Int64) + 1; v <= upTo; v++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			for _, stmt := range strings.Split(migrations[v], ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			if fill := backfills[v]; fill != nil {
				if err := fill(ctx, s, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version) VALUES (?)`), v)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply schema migration %d: %w", v, err)
		}
	}
	return nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version) VALUES (?)`), v)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply schema migration %d: %w", v, err)
		}
	}
	return nil
}

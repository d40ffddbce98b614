// Package lease is a host's lease on the shared pool: the file an agent
// renews in <shared>/leases/<host>.lease to say "this host is alive and
// may write its VMs' shared disks", its reader, and the Tracker with which
// the controller decides, on its own monotonic clock, that a lease has
// expired (and so that the host has fenced itself).
//
// A lease carries no expiry time: clocks of different machines are never
// compared. It carries a sequence number that the host advances on every
// renewal; whoever watches it measures how long the number stood still.
package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Lease is the content of a lease file.
type Lease struct {
	Host string `json:"host"`
	// Seq grows by one on every renewal, across agent restarts (a new
	// agent continues from the file it finds).
	Seq uint64 `json:"seq"`
	// WrittenAt is the host's wall clock, for people reading the file;
	// nobody decides anything from it.
	WrittenAt time.Time `json:"written_at"`
	// RenewMS is how often the host renews; TTLMS how long after its last
	// renewal the host promises to have fenced itself (its watchdog kills
	// every QEMU on the shared pool before then).
	RenewMS int64 `json:"renew_ms"`
	TTLMS   int64 `json:"ttl_ms"`
}

// Renew and TTL return the intervals as durations.
func (l Lease) Renew() time.Duration { return time.Duration(l.RenewMS) * time.Millisecond }
func (l Lease) TTL() time.Duration   { return time.Duration(l.TTLMS) * time.Millisecond }

// Dir is the directory of the leases of a shared pool.
func Dir(sharedDir string) string { return filepath.Join(sharedDir, "leases") }

// Path is the lease file of host in a shared pool.
func Path(sharedDir, host string) string { return filepath.Join(Dir(sharedDir), host+".lease") }

const suffix = ".lease"

// Write replaces the host's lease file durably: a temporary file, fsync,
// rename, fsync of the directory. A reader sees the old lease or the new
// one, never part of one, and a renewal that returned survives a crash.
func Write(sharedDir string, l Lease) error {
	dir := Dir(sharedDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create lease directory: %w", err)
	}
	// Leases are world-readable, against godwit's umask 077: they hold
	// nothing secret, and a controller that runs as its own user (the
	// godwit-controller unit) must read the root agents' leases.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("lease directory: %w", err)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	p := Path(sharedDir, l.Host)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write lease: %w", err)
	}
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(append(b, '\n'))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write lease %s: %w", p, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync lease directory: %w", err)
		}
	}
	return nil
}

// Read reads one lease file.
func Read(path string) (Lease, error) {
	var l Lease
	b, err := os.ReadFile(path)
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("parse lease %s: %w", path, err)
	}
	if l.Host == "" || l.TTLMS <= 0 || l.RenewMS <= 0 {
		return l, fmt.Errorf("lease %s: host, renew_ms and ttl_ms are required", path)
	}
	return l, nil
}

// ReadAll reads every lease of a shared pool, by host. A pool without a
// lease directory has no leases. Files that do not parse are skipped and
// reported in the error, next to the leases that did.
func ReadAll(sharedDir string) (map[string]Lease, error) {
	ents, err := os.ReadDir(Dir(sharedDir))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Lease{}, nil
	} else if err != nil {
		return nil, err
	}
	out := make(map[string]Lease, len(ents))
	var errs []error
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), suffix) {
			continue
		}
		l, err := Read(filepath.Join(Dir(sharedDir), e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if l.Host+suffix != e.Name() {
			errs = append(errs, fmt.Errorf("lease file %s names host %q", e.Name(), l.Host))
			continue
		}
		out[l.Host] = l
	}
	return out, errors.Join(errs...)
}

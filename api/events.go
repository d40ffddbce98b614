package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// EventKind is what an event of the live stream (GET /v1/events) is
// about; it is also the stream's "event:" field.
type EventKind string

const (
	EventVM        EventKind = "vm"
	EventMigration EventKind = "migration"
	EventIntent    EventKind = "intent"
	// EventReset says events were missed: the ID resumed from is older
	// than what the controller keeps, or from before it restarted, or the
	// reader fell too far behind. Re-read the state (GET) and carry on:
	// the stream goes on from the reset's ID.
	EventReset EventKind = "reset"
)

// EventKinds are the kinds a filter may name (a reset is always sent).
var EventKinds = []EventKind{EventVM, EventMigration, EventIntent}

// EventAction is what happened to the object.
type EventAction string

const (
	EventCreated EventAction = "created"
	EventUpdated EventAction = "updated"
	EventDeleted EventAction = "deleted"
)

// Event is one state change of a VM, a migration or an intent, with the
// whole object as it was written, so that a follower needs no read of
// its own. Progress is a migration's update too.
type Event struct {
	// ID is "EPOCH-SEQ": EPOCH names the controller process, SEQ counts
	// its events from 1 without gaps. Resume after it with the
	// Last-Event-ID header (or ?since=).
	ID     string      `json:"id"`
	Kind   EventKind   `json:"kind"`
	Action EventAction `json:"action,omitempty"`
	// Name is the VM's name, or the migration's or intent's ID.
	Name    string    `json:"name,omitempty"`
	Project string    `json:"project,omitempty"`
	Time    time.Time `json:"time"`
	// Object is the VM, Migration or Intent (for deleted: as it was
	// last); decode it with VM, Migration or Intent.
	Object json.RawMessage `json:"object,omitempty"`
	// Reason says why a reset was sent.
	Reason string `json:"reason,omitempty"`
}

// VM decodes a vm event's object.
func (e Event) VM() (VM, error) { return decodeEvent[VM](e, EventVM) }

// Migration decodes a migration event's object.
func (e Event) Migration() (Migration, error) { return decodeEvent[Migration](e, EventMigration) }

// Intent decodes an intent event's object.
func (e Event) Intent() (Intent, error) { return decodeEvent[Intent](e, EventIntent) }

func decodeEvent[T any](e Event, kind EventKind) (T, error) {
	var v T
	if e.Kind != kind {
		return v, fmt.Errorf("event %s is about a %s, not a %s", e.ID, e.Kind, kind)
	}
	if err := json.Unmarshal(e.Object, &v); err != nil {
		return v, fmt.Errorf("decode event %s: %w", e.ID, err)
	}
	return v, nil
}

// EventFilter narrows the event stream. Empty fields match everything;
// a reset always matches.
type EventFilter struct {
	Kinds []EventKind // ?kind=vm,migration,intent
	Names []string    // ?name=: VM names, migration or intent IDs
}

// Match reports whether e passes the filter.
func (f EventFilter) Match(e Event) bool {
	if e.Kind == EventReset {
		return true
	}
	return (len(f.Kinds) == 0 || slices.Contains(f.Kinds, e.Kind)) &&
		(len(f.Names) == 0 || slices.Contains(f.Names, e.Name))
}

// Query is the filter as the stream's query parameters.
func (f EventFilter) Query() url.Values {
	q := url.Values{}
	if len(f.Kinds) > 0 {
		ks := make([]string, len(f.Kinds))
		for i, k := range f.Kinds {
			ks[i] = string(k)
		}
		q.Set("kind", strings.Join(ks, ","))
	}
	if len(f.Names) > 0 {
		q.Set("name", strings.Join(f.Names, ","))
	}
	return q
}

// ParseEventFilter reads a filter from the stream's query parameters:
// kind and name (or id), each a comma-separated list.
func ParseEventFilter(q url.Values) (EventFilter, error) {
	var f EventFilter
	for _, k := range splitList(q["kind"]) {
		if !slices.Contains(EventKinds, EventKind(k)) {
			return f, fmt.Errorf("kind must be vm, migration or intent (comma-separated), not %q", k)
		}
		f.Kinds = append(f.Kinds, EventKind(k))
	}
	f.Names = append(splitList(q["name"]), splitList(q["id"])...)
	return f, nil
}

func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

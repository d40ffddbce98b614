// Package events is the controller's live event stream: a Hub keeps the
// last events (state changes and progress of VMs, migrations and
// intents) in a ring with gapless sequence numbers, and a Store
// decorator publishes one after each successful write of those records.
// GET /v1/events (internal/controller) serves them as server-sent
// events, resumable with Last-Event-ID.
//
// Readers pull from the ring at their own pace, so a slow reader never
// holds up a writer: one that falls a ring's length behind gets a reset
// (re-read the state) instead of the events it missed.
package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
)

// DefaultSize is how many events a Hub keeps: minutes of a busy drain's
// progress, so that a client reconnecting after a blip misses nothing.
const DefaultSize = 4096

// Hub keeps the last events and wakes their readers.
type Hub struct {
	// epoch names this process in event IDs: an ID from before a restart
	// (whose sequence numbers start again at 1) is then never mistaken
	// for one of ours.
	epoch string
	now   func() time.Time

	mu   sync.Mutex
	ring []api.Event // event seq is at ring[seq % len(ring)]
	last uint64      // seq of the newest event; 0 before the first
	wake chan struct{}
}

// NewHub returns a Hub keeping the last size events (DefaultSize when
// size <= 0).
func NewHub(size int) *Hub {
	if size <= 0 {
		size = DefaultSize
	}
	return &Hub{epoch: strconv.FormatInt(time.Now().UnixNano(), 36), now: time.Now,
		ring: make([]api.Event, size), wake: make(chan struct{})}
}

// Publish appends an event about obj (a VM, Migration or Intent) and
// wakes the readers.
func (h *Hub) Publish(kind api.EventKind, action api.EventAction, name, project string, obj any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode %s %s event: %w", kind, action, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last++
	h.ring[h.last%uint64(len(h.ring))] = api.Event{ID: h.id(h.last), Kind: kind, Action: action, Name: name, Project: project,
		Time: h.now().UTC(), Object: b}
	close(h.wake)
	h.wake = make(chan struct{})
	return nil
}

func (h *Hub) id(seq uint64) string { return h.epoch + "-" + strconv.FormatUint(seq, 10) }

// oldest is the seq of the oldest event kept (h.last+1 when none is).
func (h *Hub) oldest() uint64 {
	if n := uint64(len(h.ring)); h.last > n {
		return h.last - n + 1
	}
	return 1
}

// LastID is the ID of the newest event ("EPOCH-0" before the first).
func (h *Hub) LastID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.id(h.last)
}

// Sub is one reader's place in the stream.
type Sub struct {
	h     *Hub
	after uint64 // seq of the last event read
	reset string // a reset to send first: its reason
}

// Subscribe starts a reader after lastID: from now on when it is empty,
// else with the events after it that the hub still keeps, or with a
// reset when it cannot tell what came after (an ID from another process,
// or older than the ring).
func (h *Hub) Subscribe(lastID string) *Sub {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &Sub{h: h, after: h.last}
	if lastID == "" {
		return s
	}
	epoch, seqText, _ := strings.Cut(lastID, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	switch {
	case err != nil:
		s.reset = fmt.Sprintf("%q is not an event ID (EPOCH-SEQ)", lastID)
	case epoch != h.epoch:
		s.reset = "the controller restarted since event " + lastID
	case seq > h.last:
		s.reset = "event " + lastID + " was never sent"
	case seq+1 < h.oldest():
		s.reset = "the events after " + lastID + " are no longer kept"
	default:
		s.after = seq
	}
	return s
}

// Next returns the events after the reader's place, at most max of them,
// and moves past them; and a channel closed when the next event is
// published. A reset comes alone, and the reader goes on from the newest
// event.
func (s *Sub) Next(max int) ([]api.Event, <-chan struct{}) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.reset == "" && s.after+1 < h.oldest() {
		s.reset = fmt.Sprintf("the reader fell behind: events %s to %s are no longer kept", h.id(s.after+1), h.id(h.oldest()-1))
	}
	if s.reset != "" {
		e := api.Event{ID: h.id(h.last), Kind: api.EventReset, Time: h.now().UTC(), Reason: s.reset + "; read the state again"}
		s.reset, s.after = "", h.last
		return []api.Event{e}, h.wake
	}
	var evs []api.Event
	for s.after < h.last && len(evs) < max {
		s.after++
		evs = append(evs, h.ring[s.after%uint64(len(h.ring))])
	}
	return evs, h.wake
}

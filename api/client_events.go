package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// How an event stream reconnects: a pause that doubles from
// reconnectFirst up to reconnectMax, for at most reconnectFor of
// failures in a row. The controller keeps the events a reconnect needs,
// so a short outage loses nothing.
const (
	reconnectFirst = 250 * time.Millisecond
	reconnectMax   = 5 * time.Second
	reconnectFor   = 30 * time.Second
)

// EventStream is an open GET /v1/events: its events in order on C, the
// stream reconnecting by itself with Last-Event-ID when the connection
// breaks.
type EventStream struct {
	// C delivers the events; it is closed when the context ends, Close
	// is called, or the stream fails for good (Err says why).
	C <-chan Event

	cancel context.CancelFunc
	mu     sync.Mutex
	err    error
	lastID string
}

// Close ends the stream: its connection is closed, then C.
func (s *EventStream) Close() { s.cancel() }

// Err is why C was closed: nil when the context ended or Close was
// called.
func (s *EventStream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// LastID is the ID of the last event delivered on C: resume after it
// with Client.Events when this stream has ended.
func (s *EventStream) LastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

// Events opens the controller's live event stream, resuming after
// lastID ("" for events from now on). It returns once the controller has
// answered, so every change from then on is delivered: read the state
// after Events returns, then apply the events. A controller without the
// stream answers with an *Error of Status 404.
func (c *Client) Events(ctx context.Context, f EventFilter, lastID string) (*EventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	body, err := c.openEvents(ctx, f, lastID)
	if err != nil {
		cancel()
		return nil, err
	}
	ch := make(chan Event)
	s := &EventStream{C: ch, lastID: lastID, cancel: cancel}
	go s.run(ctx, c, f, body, ch)
	return s, nil
}

func (c *Client) openEvents(ctx context.Context, f EventFilter, lastID string) (io.ReadCloser, error) {
	path := "/v1/events"
	if q := f.Query().Encode(); q != "" {
		path += "?" + q
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	return c.stream(req)
}

// run reads the stream, and reconnects after the last event read until
// ctx ends or reconnecting fails for reconnectFor.
func (s *EventStream) run(ctx context.Context, c *Client, f EventFilter, body io.ReadCloser, ch chan<- Event) {
	defer close(ch)
	defer s.cancel()
	for {
		err := s.read(ctx, body, ch)
		body.Close()
		if ctx.Err() != nil {
			return
		}
		pause, failing := reconnectFirst, time.Time{}
		for {
			if body, err = c.openEvents(ctx, f, s.LastID()); err == nil {
				break
			}
			var ae *Error
			if ctx.Err() != nil {
				return
			}
			if errors.As(err, &ae) && ae.Status/100 == 4 {
				s.fail(err) // refused, not unreachable: retrying will not help
				return
			}
			if failing.IsZero() {
				failing = time.Now()
			} else if time.Since(failing) > reconnectFor {
				s.fail(fmt.Errorf("the event stream broke and reconnecting failed for %s: %w", reconnectFor, err))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, reconnectMax)
		}
	}
}

// setLastID records id (kept when empty) and returns the one before.
func (s *EventStream) setLastID(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.lastID
	if id != "" {
		s.lastID = id
	}
	return prev
}

func (s *EventStream) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// read parses server-sent events from body onto ch until the body ends.
func (s *EventStream) read(ctx context.Context, body io.Reader, ch chan<- Event) error {
	br := bufio.NewReader(body)
	var id, kind string
	var data strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err // a partial event is dropped: it is sent again after a reconnect
		}
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "event":
				kind = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			} // "" is a comment (the heartbeat); other fields are ignored, as SSE says
			continue
		}
		if data.Len() > 0 {
			var e Event
			if err := json.Unmarshal([]byte(data.String()), &e); err != nil {
				return fmt.Errorf("decode event %s: %w", id, err)
			}
			if e.ID == "" {
				e.ID = id
			}
			if e.Kind == "" {
				e.Kind = EventKind(kind)
			}
			// The ID is recorded before the send, so that a reader who
			// got e sees it in LastID, and put back when e was not sent.
			prev := s.setLastID(id)
			select {
			case ch <- e:
			case <-ctx.Done():
				s.setLastID(prev)
				return ctx.Err()
			}
		} else if id != "" {
			s.setLastID(id)
		}
		id, kind = "", ""
		data.Reset()
	}
}

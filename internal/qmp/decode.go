package qmp

import (
	"encoding/json"
	"fmt"
	"time"
)

// message is any line QEMU sends: a greeting, a reply (return or error,
// with the id we sent) or an event.
type message struct {
	QMP       json.RawMessage `json:"QMP,omitempty"`
	Return    json.RawMessage `json:"return,omitempty"`
	Error     *Error          `json:"error,omitempty"`
	ID        string          `json:"id,omitempty"`
	Event     string          `json:"event,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp,omitempty"`
}

// decode parses one line from QEMU. It is the only decoder of outside
// input in this package, hence FuzzDecode.
func decode(line []byte) (message, error) {
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return message{}, fmt.Errorf("qmp: bad message %q: %w", truncate(line), err)
	}
	return m, nil
}

// event returns m as an Event when it is one. A line with both "event"
// and "id" is an event: QEMU never puts an id on one, and treating it as
// a reply could hand a caller the wrong answer.
func (m message) event() (Event, bool) {
	if m.Event == "" {
		return Event{}, false
	}
	ev := Event{Name: m.Event, Data: m.Data}
	if ts := m.Timestamp; ts != nil && ts.Seconds >= 0 && ts.Microseconds >= 0 && ts.Microseconds < 1e6 {
		// QEMU sends -1/-1 when its clock failed; that is no time.
		ev.Timestamp = time.Unix(ts.Seconds, ts.Microseconds*1000)
	}
	return ev, true
}

// result turns a reply into Run's return: the QMP error, or the "return"
// value decoded into out (nil to ignore it).
func (m message) result(cmd string, out any) error {
	if m.Error != nil {
		return m.Error
	}
	if out == nil || m.Return == nil {
		return nil
	}
	if err := json.Unmarshal(m.Return, out); err != nil {
		return fmt.Errorf("qmp: decode reply to %s: %w", cmd, err)
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// Package qmp is a small client for the QEMU Machine Protocol over a unix
// socket: connect (greeting and capability negotiation), run a command and
// decode its reply, receive events, close.
//
// We write our own rather than take digitalocean/go-qemu: that library is
// barely maintained, its monitor has no per-call timeouts, and what we
// need fits in one file. Replies are matched to commands by "id", so
// concurrent Run calls are safe; every call is bounded by its context (or
// DefaultTimeout).
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// DefaultTimeout bounds a Run whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// EventBuffer is how many events wait for a slow reader; past that, new
// events are dropped (and counted in Dropped) rather than blocking replies.
const EventBuffer = 256

// Error is an error QEMU returned for a command.
type Error struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *Error) Error() string { return "qmp: " + e.Class + ": " + e.Desc }

// ErrClosed is returned by calls on a closed or broken connection.
var ErrClosed = errors.New("qmp: connection closed")

// Event is an asynchronous QMP event.
type Event struct {
	Name      string
	Data      json.RawMessage
	Timestamp time.Time
}

// message is any line QEMU sends.
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

// decode parses one line from QEMU.
func decode(line []byte) (message, error) {
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("qmp: bad message %q: %w", truncate(line), err)
	}
	return m, nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// Monitor is a QMP connection.
type Monitor struct {
	conn   net.Conn
	events chan Event

	writeMu sync.Mutex
	mu      sync.Mutex
	nextID  int
	pending map[string]chan message
	err     error // why the reader stopped
	done    chan struct{}
	dropped int
}

// Dial connects to the QMP socket at path and negotiates capabilities.
func Dial(ctx context.Context, path string) (*Monitor, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: connect %s: %w", path, err)
	}
	m := &Monitor{conn: conn, events: make(chan Event, EventBuffer), pending: map[string]chan message{}, done: make(chan struct{})}
	r := bufio.NewReaderSize(conn, 64<<10)
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	} else {
		_ = conn.SetReadDeadline(time.Now().Add(DefaultTimeout))
	}
	greeting, err := r.ReadBytes('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: read greeting: %w", err)
	}
	if g, err := decode(greeting); err != nil || g.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: expected a greeting, got %q", truncate(greeting))
	}
	_ = conn.SetReadDeadline(time.Time{})
	go m.read(r)
	if err := m.Run(ctx, "qmp_capabilities", nil, nil); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// read delivers replies to their callers and events to the channel until
// the connection breaks.
func (m *Monitor) read(r *bufio.Reader) {
	var err error
	for {
		var line []byte
		line, err = r.ReadBytes('\n')
		if err != nil {
			break
		}
		msg, derr := decode(line)
		if derr != nil {
			continue // a line we cannot parse is no reply we wait for
		}
		if msg.Event != "" {
			ev := Event{Name: msg.Event, Data: msg.Data}
			if msg.Timestamp != nil {
				ev.Timestamp = time.Unix(msg.Timestamp.Seconds, msg.Timestamp.Microseconds*1000)
			}
			select {
			case m.events <- ev:
			default:
				m.mu.Lock()
				m.dropped++
				m.mu.Unlock()
			}
			continue
		}
		m.mu.Lock()
		ch, ok := m.pending[msg.ID]
		delete(m.pending, msg.ID)
		m.mu.Unlock()
		if ok {
			ch <- msg
		}
	}
	m.mu.Lock()
	m.err = fmt.Errorf("%w: %v", ErrClosed, err)
	m.mu.Unlock()
	close(m.done)
	close(m.events)
}

// Run sends cmd with args (nil for none) and decodes the reply's "return"
// into result (nil to ignore it).
func (m *Monitor) Run(ctx context.Context, cmd string, args, result any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	m.mu.Lock()
	if m.err != nil {
		err := m.err
		m.mu.Unlock()
		return err
	}
	m.nextID++
	id := strconv.Itoa(m.nextID)
	ch := make(chan message, 1)
	m.pending[id] = ch
	m.mu.Unlock()

	req := map[string]any{"execute": cmd, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		m.forget(id)
		return fmt.Errorf("qmp: encode %s: %w", cmd, err)
	}
	m.writeMu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		_ = m.conn.SetWriteDeadline(dl)
	}
	_, err = m.conn.Write(append(b, '\n'))
	m.writeMu.Unlock()
	if err != nil {
		m.forget(id)
		return fmt.Errorf("qmp: send %s: %w", cmd, err)
	}
	select {
	case msg := <-ch:
		if msg.Error != nil {
			return msg.Error
		}
		if result != nil && msg.Return != nil {
			if err := json.Unmarshal(msg.Return, result); err != nil {
				return fmt.Errorf("qmp: decode reply to %s: %w", cmd, err)
			}
		}
		return nil
	case <-m.done:
		m.forget(id)
		m.mu.Lock()
		defer m.mu.Unlock()
		return fmt.Errorf("qmp: %s: %w", cmd, m.err)
	case <-ctx.Done():
		m.forget(id)
		return fmt.Errorf("qmp: %s: %w", cmd, ctx.Err())
	}
}

func (m *Monitor) forget(id string) {
	m.mu.Lock()
	delete(m.pending, id)
	m.mu.Unlock()
}

// Events delivers events until the connection closes. One reader only;
// events past EventBuffer unread are dropped.
func (m *Monitor) Events() <-chan Event { return m.events }

// Dropped counts events dropped because nobody read them.
func (m *Monitor) Dropped() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// Done is closed when the connection is gone (QEMU exited, or Close).
func (m *Monitor) Done() <-chan struct{} { return m.done }

// Close closes the connection.
func (m *Monitor) Close() error {
	err := m.conn.Close()
	<-m.done
	return err
}

// Package qmp is a small client for the QEMU Machine Protocol over a unix
// socket: connect (greeting and capability negotiation), run a command and
// decode its reply, receive events, close.
//
// We write our own rather than take digitalocean/go-qemu: that library is
// barely maintained, its monitor has no per-call timeouts, and what we
// need fits in one file. Replies are matched to commands by "id", so
// concurrent Run calls are safe; every call is bounded by its context (or
// DefaultTimeout). One goroutine per connection reads; it never blocks on
// a caller, so a slow event reader cannot hold up replies.
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

	"github.com/godwit/godwit/internal/safe"
)

// DefaultTimeout bounds a Dial or Run whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// EventBuffer is how many events wait for each slow subscriber; past that,
// new events to that subscriber are dropped (and counted in Dropped) rather
// than blocking the reader and with it every reply.
const EventBuffer = 256

// Error is an error QEMU returned for a command.
type Error struct {
	Class string `json:"class"` // e.g. GenericError, DeviceNotFound, CommandNotFound
	Desc  string `json:"desc"`
}

func (e *Error) Error() string { return "qmp: " + e.Class + ": " + e.Desc }

// ErrClosed is returned by calls on a closed or broken connection.
var ErrClosed = errors.New("qmp: connection closed")

// Event is an asynchronous QMP event.
type Event struct {
	Name      string
	Data      json.RawMessage // nil when the event has no data
	Timestamp time.Time       // QEMU's clock; zero when it sent none
}

// Monitor is a QMP connection. Its methods are safe for concurrent use.
type Monitor struct {
	conn net.Conn

	writeMu sync.Mutex // one command on the wire at a time

	mu      sync.Mutex
	nextID  uint64
	pending map[string]chan message // by id; buffered, one reply each
	subs    []chan Event
	dropped int
	err     error // why the reader stopped; set once
	done    chan struct{}
}

// Dial connects to the QMP socket at path, reads QEMU's greeting and
// leaves capability negotiation mode. Both are bounded by ctx (or
// DefaultTimeout).
func Dial(ctx context.Context, path string) (*Monitor, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: connect %s: %w", path, err)
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	if err := readGreeting(ctx, conn, r); err != nil {
		conn.Close()
		return nil, err
	}
	m := &Monitor{conn: conn, pending: map[string]chan message{}, done: make(chan struct{})}
	// A panic in the reader breaks this connection only; the caller
	// reconnects as after any broken one.
	safe.Go(nil, "qmp reader", func() { m.read(r) })
	if err := m.Run(ctx, "qmp_capabilities", nil, nil); err != nil {
		m.Close()
		return nil, fmt.Errorf("qmp: negotiate capabilities on %s: %w", path, err)
	}
	return m, nil
}

// readGreeting reads the first line, which must be QEMU's {"QMP": ...};
// its version and capabilities are nothing we need yet. Cancelling ctx
// unblocks the read by moving its deadline to now.
func readGreeting(ctx context.Context, conn net.Conn, r *bufio.Reader) error {
	// Only ctx sets the deadline (Dial gave it one), so that a timeout
	// reads as context.DeadlineExceeded rather than a socket i/o timeout.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	line, err := r.ReadBytes('\n')
	if !stop() || ctx.Err() != nil {
		return fmt.Errorf("qmp: read greeting: %w", context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("qmp: read greeting: %w", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	if g, err := decode(line); err != nil || g.QMP == nil {
		return fmt.Errorf("qmp: expected a QMP greeting, got %q", truncate(line))
	}
	return nil
}

// read delivers replies to their callers and events to the subscribers
// until the connection breaks; it is the connection's only reader.
func (m *Monitor) read(r *bufio.Reader) {
	var err error
	defer func() {
		if err == nil {
			err = errors.New("the reader panicked")
		}
		m.mu.Lock()
		m.err = fmt.Errorf("%w: %v", ErrClosed, err)
		for _, ch := range m.subs {
			close(ch)
		}
		m.subs = nil
		m.mu.Unlock()
		close(m.done)
	}()
	for {
		var line []byte
		if line, err = r.ReadBytes('\n'); err != nil {
			break
		}
		msg, derr := decode(line)
		if derr != nil {
			continue // a line we cannot parse is no reply anyone waits for
		}
		if ev, ok := msg.event(); ok {
			m.publish(ev)
			continue
		}
		m.mu.Lock()
		ch, ok := m.pending[msg.ID]
		delete(m.pending, msg.ID)
		m.mu.Unlock()
		if ok {
			ch <- msg // buffered: never blocks
		}
	}
}

// publish fans ev out to every subscriber without blocking.
func (m *Monitor) publish(ev Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.subs {
		select {
		case ch <- ev:
		default:
			m.dropped++
		}
	}
}

// Run sends cmd with args (nil for none) and decodes the reply's "return"
// into result (nil to ignore it). A QMP error comes back as *Error. The
// call is bounded by ctx, or DefaultTimeout when ctx has no deadline; a
// reply that arrives after the caller gave up is discarded.
func (m *Monitor) Run(ctx context.Context, cmd string, args, result any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{Execute: cmd, Arguments: args}

	m.mu.Lock()
	if m.err != nil {
		err := m.err
		m.mu.Unlock()
		return fmt.Errorf("qmp: %s: %w", cmd, err)
	}
	m.nextID++
	req.ID = strconv.FormatUint(m.nextID, 10)
	ch := make(chan message, 1)
	m.pending[req.ID] = ch
	m.mu.Unlock()
	defer m.forget(req.ID)

	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp: encode %s: %w", cmd, err)
	}
	if err := m.write(ctx, append(b, '\n')); err != nil {
		return fmt.Errorf("qmp: send %s: %w", cmd, err)
	}
	select {
	case msg := <-ch:
		return msg.result(cmd, result)
	case <-m.done:
		// The reader may have delivered the reply just before the
		// connection closed (QEMU answers "quit" and then hangs up).
		select {
		case msg := <-ch:
			return msg.result(cmd, result)
		default:
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		return fmt.Errorf("qmp: %s: %w", cmd, m.err)
	case <-ctx.Done():
		return fmt.Errorf("qmp: %s: %w", cmd, ctx.Err())
	}
}

// write sends one line; ctx's deadline or cancellation interrupts it. A
// write that fails part way would leave half a command on the wire, so
// any failure closes the connection: callers see ErrClosed and reconnect.
func (m *Monitor) write(ctx context.Context, b []byte) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = m.conn.SetWriteDeadline(time.Now())
		close(fired)
	})
	_, err := m.conn.Write(b)
	if !stop() {
		<-fired // so the reset below cannot be undone by a late fire
		_ = m.conn.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		m.conn.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return err
}

func (m *Monitor) forget(id string) {
	m.mu.Lock()
	delete(m.pending, id)
	m.mu.Unlock()
}

// Events subscribes to the events QEMU sends from now on. Each call returns
// a new channel, so several readers (a shutdown watcher, a migration) each
// see every event. Buffer policy: a subscriber that falls EventBuffer events
// behind loses the newer ones (counted in Dropped) rather than delaying
// replies or other subscribers. The channel is closed when the connection
// ends; on a closed connection Events returns a closed channel.
func (m *Monitor) Events() <-chan Event {
	ch := make(chan Event, EventBuffer)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		close(ch)
		return ch
	}
	m.subs = append(m.subs, ch)
	return ch
}

// Dropped counts events dropped because a subscriber did not keep up.
func (m *Monitor) Dropped() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// Done is closed when the connection is gone (QEMU exited, or Close).
func (m *Monitor) Done() <-chan struct{} { return m.done }

// Close closes the connection and waits for the reader to finish, so no
// event is delivered after it returns. It is safe to call more than once.
func (m *Monitor) Close() error {
	err := m.conn.Close()
	<-m.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

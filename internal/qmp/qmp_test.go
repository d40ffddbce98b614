package qmp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/qmp"
	"github.com/godwit/godwit/internal/qmp/qmptest"
)

var ctx = context.Background()

func dial(t *testing.T, path string) *qmp.Monitor {
	t.Helper()
	m, err := qmp.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestRunConcurrentRepliesMatchByID(t *testing.T) {
	srv := qmptest.New(t, func(cmd string, args json.RawMessage) (any, error) {
		var a struct{ N int }
		_ = json.Unmarshal(args, &a)
		time.Sleep(time.Duration(50-a.N) * time.Millisecond) // answer out of order
		return map[string]int{"n": a.N}, nil
	})
	m := dial(t, srv.Path)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res struct{ N int }
			if err := m.Run(ctx, "echo", map[string]int{"N": i}, &res); err != nil || res.N != i {
				t.Errorf("call %d got %d, %v", i, res.N, err)
			}
		}()
	}
	wg.Wait()
}

func TestRunResultsAndErrors(t *testing.T) {
	srv := qmptest.New(t, func(cmd string, args json.RawMessage) (any, error) {
		switch cmd {
		case "query-status":
			return map[string]any{"status": "running", "running": true}, nil
		case "device_del":
			return nil, &qmp.Error{Class: "DeviceNotFound", Desc: "Device 'x' not found"}
		case "plain-error":
			return nil, errors.New("something broke")
		case "echo-args":
			return args, nil
		}
		return nil, nil
	})
	m := dial(t, srv.Path)

	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := m.Run(ctx, "query-status", nil, &st); err != nil || st.Status != "running" || !st.Running {
		t.Errorf("query-status = %+v, %v", st, err)
	}
	var got map[string]any
	if err := m.Run(ctx, "echo-args", map[string]any{"id": "disk0", "size": 1 << 30}, &got); err != nil ||
		got["id"] != "disk0" || got["size"] != float64(1<<30) {
		t.Errorf("arguments did not arrive intact: %v, %v", got, err)
	}

	for _, c := range []struct{ cmd, class, desc string }{
		{"device_del", "DeviceNotFound", "Device 'x' not found"},
		{"plain-error", "GenericError", "something broke"},
	} {
		err := m.Run(ctx, c.cmd, nil, nil)
		var qe *qmp.Error
		if !errors.As(err, &qe) || qe.Class != c.class || qe.Desc != c.desc {
			t.Errorf("%s = %#v; want *qmp.Error{%s, %s}", c.cmd, err, c.class, c.desc)
		}
	}

	var wrong struct{ Status int }
	if err := m.Run(ctx, "query-status", nil, &wrong); err == nil || !strings.Contains(err.Error(), "decode reply to query-status") {
		t.Errorf("a reply of the wrong shape = %v; want a decode error naming the command", err)
	}
	if err := m.Run(ctx, "bad-args", func() {}, nil); err == nil {
		t.Error("arguments that cannot be encoded were sent")
	}
	if err := m.Run(ctx, "ok", nil, nil); err != nil {
		t.Errorf("the connection did not survive failed calls: %v", err)
	}
}

func TestRunTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv := qmptest.New(t, func(cmd string, _ json.RawMessage) (any, error) {
		if cmd == "hang" {
			<-release
			return map[string]string{"from": "hang"}, nil
		}
		return map[string]string{"from": cmd}, nil
	})
	m := dial(t, srv.Path)

	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := m.Run(tctx, "hang", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang = %v; want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 100ms deadline returned after %s", d)
	}

	cctx, cancelNow := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancelNow)
	if err := m.Run(cctx, "hang", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("hang, cancelled = %v; want context.Canceled", err)
	}

	// The late replies to the abandoned calls must not be taken as the
	// answer to the next one.
	close(release)
	time.Sleep(50 * time.Millisecond)
	var res struct{ From string }
	if err := m.Run(ctx, "next", nil, &res); err != nil || res.From != "next" {
		t.Errorf("call after timed-out ones = %q, %v; want the reply to next", res.From, err)
	}
}

func TestClosedConnection(t *testing.T) {
	hanging := make(chan struct{})
	srv := qmptest.New(t, func(cmd string, _ json.RawMessage) (any, error) {
		if cmd == "hang" {
			close(hanging)
			select {} // QEMU died mid-command
		}
		return nil, nil
	})
	m := dial(t, srv.Path)
	events := m.Events()

	inflight := make(chan error, 1)
	go func() { inflight <- m.Run(ctx, "hang", nil, nil) }()
	<-hanging
	srv.Hangup()
	select {
	case err := <-inflight:
		if !errors.Is(err, qmp.ErrClosed) {
			t.Errorf("in-flight call when the connection broke = %v; want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight call did not return when the connection broke")
	}
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done was not closed")
	}
	if err := m.Run(ctx, "ok", nil, nil); !errors.Is(err, qmp.ErrClosed) {
		t.Errorf("call on a broken connection = %v; want ErrClosed", err)
	}
	if _, open := <-events; open {
		t.Error("an event subscription stayed open after the connection broke")
	}
	if _, open := <-m.Events(); open {
		t.Error("Events on a broken connection returned an open channel")
	}
	if err := m.Close(); err != nil {
		t.Errorf("close of a broken connection: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestCloseUnblocksCallers(t *testing.T) {
	srv := qmptest.New(t, func(cmd string, _ json.RawMessage) (any, error) { select {} })
	m, err := qmp.Dial(ctx, srv.Path)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx, "hang", nil, nil) }()
	time.Sleep(50 * time.Millisecond)
	m.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, qmp.ErrClosed) {
			t.Errorf("call when the client closed = %v; want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a waiting call")
	}
}

func TestEventsFanOut(t *testing.T) {
	srv := qmptest.New(t, func(string, json.RawMessage) (any, error) { return nil, nil })
	m := dial(t, srv.Path)
	a, b := m.Events(), m.Events()
	srv.Event("MIGRATION", map[string]string{"status": "completed"})
	srv.Event("STOP", nil)
	for name, ch := range map[string]<-chan qmp.Event{"a": a, "b": b} {
		for _, want := range []struct{ name, data string }{{"MIGRATION", `{"status":"completed"}`}, {"STOP", ""}} {
			select {
			case ev := <-ch:
				if ev.Name != want.name || string(ev.Data) != want.data || time.Since(ev.Timestamp) > time.Minute {
					t.Errorf("subscriber %s got %+v; want %s %s stamped now", name, ev, want.name, want.data)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("subscriber %s: no %s event", name, want.name)
			}
		}
	}

	// b stops reading: it loses events past its buffer, while a and the
	// replies carry on.
	const n = qmp.EventBuffer + 10
	var got atomic.Int32
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for ev := range a {
			if ev.Name == "SPAM" {
				got.Add(1)
			}
			if got.Load() == n {
				return
			}
		}
	}()
	for i := range n {
		srv.Event("SPAM", map[string]int{"i": i})
		// Paced so that a, which reads, never lags a buffer behind: on a
		// busy machine its goroutine can be scheduled late, and a full
		// buffer drops for any subscriber (a flake seen under -race).
		if (i+1)%64 == 0 {
			for deadline := time.Now().Add(5 * time.Second); got.Load() < int32(i+1) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
	}
	if err := m.Run(ctx, "ok", nil, nil); err != nil {
		t.Fatalf("reply blocked behind events: %v", err)
	}
	select {
	case <-readerDone:
	case <-time.After(5 * time.Second):
		t.Fatalf("the reading subscriber got %d of %d events", got.Load(), n)
	}
	if d := m.Dropped(); d != 10 {
		t.Errorf("dropped %d events; want the 10 past the slow subscriber's buffer", d)
	}
	if len(b) != qmp.EventBuffer {
		t.Errorf("slow subscriber holds %d events; want a full buffer of %d", len(b), qmp.EventBuffer)
	}
}

// rawServer serves one connection with fn, for greetings the fake monitor
// would never send.
func rawServer(t *testing.T, fn func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raw.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fn(c, bufio.NewReader(c))
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return path
}

func TestDialGreeting(t *testing.T) {
	for _, c := range []struct {
		name    string
		serve   func(c net.Conn, r *bufio.Reader)
		timeout time.Duration
		want    string
	}{
		{"not QMP", func(c net.Conn, _ *bufio.Reader) { c.Write([]byte("SSH-2.0-OpenSSH\n")) }, 0, "expected a QMP greeting"},
		{"JSON but no greeting", func(c net.Conn, _ *bufio.Reader) { c.Write([]byte(`{"return": {}}` + "\n")) }, 0, "expected a QMP greeting"},
		{"hangs up", func(net.Conn, *bufio.Reader) {}, 0, "read greeting"},
		{"silent", func(c net.Conn, r *bufio.Reader) { r.ReadByte() }, 200 * time.Millisecond, "deadline exceeded"},
		{"refuses negotiation", func(c net.Conn, r *bufio.Reader) {
			c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
			line, _ := r.ReadBytes('\n')
			var req struct{ ID string }
			json.Unmarshal(line, &req)
			c.Write([]byte(`{"error": {"class": "GenericError", "desc": "no"}, "id": "` + req.ID + `"}` + "\n"))
			r.ReadByte()
		}, 0, "negotiate capabilities"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := rawServer(t, c.serve)
			dctx := ctx
			if c.timeout > 0 {
				var cancel context.CancelFunc
				dctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			start := time.Now()
			m, err := qmp.Dial(dctx, path)
			if err == nil {
				m.Close()
				t.Fatal("dial succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("dial = %v; want an error saying %q", err, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("dial took %s", d)
			}
		})
	}
}

func TestDialCancel(t *testing.T) {
	path := rawServer(t, func(c net.Conn, r *bufio.Reader) { r.ReadByte() })
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := qmp.Dial(cctx, path); !errors.Is(err, context.Canceled) {
		t.Errorf("dial cancelled while waiting for the greeting = %v; want context.Canceled", err)
	}
}

func TestDialMissingSocket(t *testing.T) {
	_, err := qmp.Dial(ctx, filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Fatalf("dial of a missing socket = %v; want an error naming it", err)
	}
}

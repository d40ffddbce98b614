// Package qmptest serves a fake QMP monitor on a unix socket, built from a
// function that answers commands, for testing QMP clients without QEMU.
//
// Like QEMU it greets each client, refuses every command before
// qmp_capabilities, echoes the id of each command in its reply, and can
// send events. Unlike QEMU it answers each command on its own goroutine,
// so tests can make replies arrive out of order.
package qmptest

import (
	"bufio"
	"encoding/json"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/qmp"
)

// Handler answers a command: a result to send as "return" (nil sends {}),
// or an error (a *qmp.Error is sent as is; others as GenericError). It may
// block; other commands are answered meanwhile.
type Handler func(cmd string, args json.RawMessage) (any, error)

// Server is a fake monitor.
type Server struct {
	Path string // the socket to Dial

	ln net.Listener
	h  Handler

	mu    sync.Mutex // guards conns and serializes writes
	conns map[net.Conn]bool
	wg    sync.WaitGroup // accept and connection loops, not handlers
}

// New serves h on a socket in t's temporary directory until the test ends.
func New(t testing.TB, h Handler) *Server {
	t.Helper()
	s := &Server{Path: filepath.Join(t.TempDir(), "qmp.sock"), h: h, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) write(c net.Conn, v any) {
	b, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = c.Write(append(b, '\n'))
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	s.write(c, map[string]any{"QMP": map[string]any{
		"version":      map[string]any{"qemu": map[string]int{"major": 7, "minor": 2, "micro": 0}, "package": "qmptest"},
		"capabilities": []string{"oob"},
	}})
	var negotiated sync.Once
	ready := make(chan struct{})
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
			ID        json.RawMessage `json:"id"`
		}
		if json.Unmarshal(sc.Bytes(), &req) != nil {
			s.write(c, map[string]any{"error": &qmp.Error{Class: "GenericError", Desc: "JSON parse error"}})
			continue
		}
		if req.Execute == "qmp_capabilities" {
			negotiated.Do(func() { close(ready) })
			s.reply(c, req.ID, map[string]any{}, nil)
			continue
		}
		select {
		case <-ready:
		default:
			s.reply(c, req.ID, nil, &qmp.Error{Class: "CommandNotFound",
				Desc: "Expecting capabilities negotiation with 'qmp_capabilities'"})
			continue
		}
		go func() {
			res, err := s.h(req.Execute, req.Arguments)
			s.reply(c, req.ID, res, err)
		}()
	}
}

func (s *Server) reply(c net.Conn, id json.RawMessage, res any, err error) {
	reply := map[string]any{}
	if id != nil {
		reply["id"] = id
	}
	switch e := err.(type) {
	case nil:
		if res == nil {
			res = map[string]any{}
		}
		reply["return"] = res
	case *qmp.Error:
		reply["error"] = e
	default:
		reply["error"] = &qmp.Error{Class: "GenericError", Desc: err.Error()}
	}
	s.write(c, reply)
}

// Event sends an event, stamped with the current time, to every client.
func (s *Server) Event(name string, data any) {
	now := time.Now()
	ev := map[string]any{"event": name,
		"timestamp": map[string]int64{"seconds": now.Unix(), "microseconds": int64(now.Nanosecond() / 1000)}}
	if data != nil {
		ev["data"] = data
	}
	s.mu.Lock()
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		s.write(c, ev)
	}
}

// Hangup drops every client connection but keeps listening, as a QEMU
// whose monitor connection broke; clients may dial again.
func (s *Server) Hangup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Close stops the server and drops its connections. Handlers still
// running are not waited for: a test may leave one blocked on purpose.
func (s *Server) Close() {
	s.ln.Close()
	s.Hangup()
	s.wg.Wait()
}

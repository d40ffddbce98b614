// Package qmptest serves a fake QMP monitor on a unix socket, built from a
// function that answers commands, for testing QMP clients without QEMU.
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

// Handler answers a command: a result to send as "return", or an error
// (a *qmp.Error is sent as is; others as GenericError).
type Handler func(cmd string, args json.RawMessage) (any, error)

// Server is a fake monitor.
type Server struct {
	Path string
	ln   net.Listener

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// New serves h on a socket in t's temporary directory until the test ends.
func New(t testing.TB, h Handler) *Server {
	t.Helper()
	s := &Server{Path: filepath.Join(t.TempDir(), "qmp.sock")}
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept(h)
	t.Cleanup(s.Close)
	return s
}

func (s *Server) accept(h Handler) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c, h)
	}
}

func (s *Server) write(c net.Conn, v any) {
	b, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = c.Write(append(b, '\n'))
}

func (s *Server) serve(c net.Conn, h Handler) {
	defer s.wg.Done()
	defer c.Close()
	s.write(c, map[string]any{"QMP": map[string]any{"version": map[string]any{}, "capabilities": []string{}}})
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
			ID        json.RawMessage `json:"id"`
		}
		if json.Unmarshal(sc.Bytes(), &req) != nil {
			continue
		}
		// Each command is answered on its own goroutine so a slow
		// handler does not hold up the others, as QEMU's OOB commands.
		go func() {
			var res any = map[string]any{}
			var err error
			if req.Execute != "qmp_capabilities" {
				res, err = h(req.Execute, req.Arguments)
			}
			reply := map[string]any{"id": req.ID}
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
		}()
	}
}

// Event sends an event to every connected client.
func (s *Server) Event(name string, data any) {
	now := time.Now()
	ev := map[string]any{"event": name, "data": data,
		"timestamp": map[string]int64{"seconds": now.Unix(), "microseconds": int64(now.Nanosecond() / 1000)}}
	s.mu.Lock()
	conns := append([]net.Conn(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		s.write(c, ev)
	}
}

// Close stops the server and drops its connections.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

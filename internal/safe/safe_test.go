package safe

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log destination goroutines may write concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A goroutine started through Go that panics leaves the test process
// running, and its panic is logged at error with the value and a stack.
func TestGoRecoversAndLogs(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	done := make(chan struct{})
	Go(log, "test worker", func() {
		defer close(done)
		var m map[string]int
		m["boom"] = 1 // assignment to a nil map
	})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the goroutine never ran")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "stack=") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := buf.String()
	for _, want := range []string{"level=ERROR", "in=\"test worker\"", "assignment to entry in nil map", "safe_test.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// Run returns a panic as an error and nil otherwise.
func TestRun(t *testing.T) {
	log := slog.New(slog.NewTextHandler(&syncBuffer{}, nil))
	if err := Run(log, "calm", func() {}); err != nil {
		t.Errorf("Run of a calm func = %v", err)
	}
	err := Run(log, "round", func() { panic("no") })
	if err == nil || !strings.Contains(err.Error(), "round panicked: no") {
		t.Errorf("Run of a panicking func = %v", err)
	}
	if err := Run(nil, "nil logger", func() { panic(1) }); err == nil {
		t.Error("Run with a nil logger did not report the panic")
	}
}

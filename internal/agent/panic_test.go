package agent

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/fake"
)

// panickyList is the fake driver with a List that panics on its first
// call, as a bug would.
type panickyList struct {
	*fake.Driver
	calls atomic.Int32
}

func (p *panickyList) List(ctx context.Context) ([]driver.Status, error) {
	if p.calls.Add(1) == 1 {
		var m map[string]int
		m["boom"]++ // a nil-map write: a runtime panic
	}
	return p.Driver.List(ctx)
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A heartbeat that panics is logged with its stack, and the next ones
// reach the controller: the agent, and its host, stay alive.
func TestHeartbeatSurvivesPanic(t *testing.T) {
	var beats atomic.Int32
	ctrl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		beats.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	}))
	defer ctrl.Close()
	d, _ := fakeWithVM(t)
	var logs lockedBuffer
	a := &Agent{cfg: Config{Name: "h1", Driver: "fake", Controller: ctrl.URL, StateDir: t.TempDir(), HeartbeatInterval: 10 * time.Millisecond},
		log: slog.New(slog.NewTextHandler(&logs, nil)), drv: &panickyList{Driver: d}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.heartbeatLoop(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for beats.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if n := beats.Load(); n < 2 {
		t.Errorf("%d heartbeats after a panicking one; want the beats to go on", n)
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "nil map") || !strings.Contains(out, "stack=") {
		t.Errorf("the panic was not logged at error with its stack:\n%s", out)
	}
}

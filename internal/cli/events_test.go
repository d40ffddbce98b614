package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// serveEvents answers GET /v1/events with the events emit sends, then
// holds the stream open as a controller does.
func serveEvents(t *testing.T, f *fakeController, emit func(send func(api.Event))) {
	f.mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		n := 0
		emit(func(e api.Event) {
			n++
			e.ID = fmt.Sprintf("test-%d", n)
			b, err := json.Marshal(e)
			if err != nil {
				t.Error(err)
			}
			fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", e.ID, e.Kind, b)
			w.(http.Flusher).Flush()
		})
		<-r.Context().Done()
	})
}

func event(kind api.EventKind, action api.EventAction, name string, obj any) api.Event {
	b, _ := json.Marshal(obj)
	return api.Event{Kind: kind, Action: action, Name: name, Object: b}
}

// runEvents runs godwit as runWith does but with a poll interval no
// test would wait out: what it shows came from the event stream.
func runEvents(t *testing.T, f *fakeController, tty bool, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	a := newApp(&out, &errOut)
	a.tty, a.poll = tty, time.Hour
	code = a.execute(ctx, append([]string{"--server", f.URL}, args...))
	if ctx.Err() != nil {
		t.Fatalf("godwit %s did not end: it polls instead of following the events", strings.Join(args, " "))
	}
	return out.String(), errOut.String(), code
}

// Followed over the event stream, the drain of in-7 shows what polling
// shows (the same golden file): the intent's and its migrations' states
// come as events, each with its whole object, and the migration record
// that polling could not read at the end is a deleted one here.
func TestIntentWatchEvents(t *testing.T) {
	for _, args := range [][]string{{"intent", "watch", "in-7"}, {"drain", "host1", "--wait"}} {
		f := newFakeController(t)
		serveEvents(t, f, func(send func(api.Event)) {
			steps := watchSteps()
			had := map[string]bool{}
			for k, in := range steps {
				now := map[string]bool{}
				for _, id := range []string{"mig-1", "mig-2", "mig-3"} {
					if m, ok := watchMigration(id, k); ok {
						now[id] = true
						send(event(api.EventMigration, api.EventUpdated, id, m))
					}
				}
				send(event(api.EventIntent, api.EventUpdated, in.ID, in))
				for id := range had {
					if !now[id] {
						send(event(api.EventMigration, api.EventDeleted, id, api.Migration{ID: id}))
					}
				}
				had = now
			}
		})
		out, errOut, code := runEvents(t, f, false, args...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1: %s", args, code, errOut)
		}
		golden(t, "intent-watch-partial", out)
	}
}

// migFake is migration mig-5 moving through states: read by polling,
// each read is the next state; followed by events, reads give the state
// last sent, and a reset makes the CLI read it.
type migFake struct {
	mu     sync.Mutex
	states []api.Migration
	cur    int
	events bool
	reads  chan struct{} // a read was answered: events come after it
}

func newMigFake() *migFake {
	gb := int64(1 << 30)
	m := api.Migration{ID: "mig-5", VM: "web-1", Kind: api.KindLive, State: api.MigQueued, Source: "host1", Destination: "host3"}
	var states []api.Migration
	add := func(state api.MigrationState, remaining int64, pass int) {
		m.State, m.Progress = state, api.MigrationProgress{MemoryTotal: 2 * gb, MemoryRemaining: remaining, Throughput: 120e6, Pass: pass}
		m.UpdatedAt = at(float64(len(states)))
		states = append(states, m)
	}
	add(api.MigQueued, 2*gb, 0)
	add(api.MigTransferring, 3*gb/2, 1)
	add(api.MigTransferring, gb, 1)
	add(api.MigTransferring, gb/2, 2)
	add(api.MigSwitchingOver, gb/20, 3)
	add(api.MigCompleted, 0, 3)
	return &migFake{states: states, reads: make(chan struct{}, len(states))}
}

func (f *migFake) routes(t *testing.T, fc *fakeController) {
	fc.mux.HandleFunc("GET /v1/migrations/mig-5", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		m := f.states[min(f.cur, len(f.states)-1)]
		if !f.events {
			f.cur++
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(m)
		select {
		case f.reads <- struct{}{}:
		default: // polling: nobody waits
		}
	})
	if !f.events {
		return
	}
	serveEvents(t, fc, func(send func(api.Event)) {
		// An event older than the first read, as a real stream may send
		// (it was published between the subscription and the read):
		// the CLI does not go back to it.
		send(event(api.EventMigration, api.EventUpdated, "mig-5", f.states[0]))
		<-f.reads
		for i := 1; i < len(f.states); i++ {
			f.mu.Lock()
			f.cur = i
			f.mu.Unlock()
			if i == 3 { // this change was missed: the CLI must read it
				send(api.Event{Kind: api.EventReset, Reason: "the reader fell behind"})
				<-f.reads
				continue
			}
			send(event(api.EventVM, api.EventUpdated, "web-1", api.VM{Name: "web-1"})) // not asked for
			send(event(api.EventMigration, api.EventUpdated, "mig-5", f.states[i]))
		}
	})
}

// migrate --wait and migration watch show the same progress lines and
// summary from the event stream (a reset in the middle) as by polling.
func TestMigrationWatchEvents(t *testing.T) {
	for _, args := range [][]string{{"migration", "watch", "mig-5"}, {"migrate", "web-1", "--wait"}} {
		poll := newFakeController(t)
		newMigFake().routes(t, poll)
		want, errOut, code := run(t, poll.Server, args...)
		if code != 0 {
			t.Fatalf("%s by polling: exit %d: %s", args, code, errOut)
		}
		for _, line := range []string{"queued ", "transferring   [############------------]  50%", "pass 2", "switching-over", "completed"} {
			if !strings.Contains(want, line) {
				t.Errorf("%s by polling does not show %q:\n%s", args, line, want)
			}
		}

		evs := newFakeController(t)
		mf := newMigFake()
		mf.events = true
		mf.routes(t, evs)
		got, errOut, code := runEvents(t, evs, false, args...)
		if code != 0 || got != want {
			t.Errorf("%s from events: exit %d (%s), shows\n%s\nwant, as by polling:\n%s", args, code, errOut, got, want)
		}
	}
}

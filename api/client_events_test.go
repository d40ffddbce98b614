package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// The client reconnects by itself when the stream breaks, with the last
// ID it delivered as Last-Event-ID, and skips heartbeats; a refusal on
// reconnecting ends the stream with the error.
func TestEventsReconnect(t *testing.T) {
	var mu sync.Mutex
	var asked []string // Last-Event-ID of each connection
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Header.Get("Last-Event-ID"))
		n := len(asked)
		mu.Unlock()
		if r.URL.Query().Get("kind") != "migration" || r.URL.Query().Get("name") != "m1,m2" {
			t.Errorf("query %q", r.URL.RawQuery)
		}
		if n == 3 {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"unauthenticated","message":"token revoked"}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 2; i++ {
			seq := (n-1)*2 + i
			fmt.Fprintf(w, ": heartbeat\n\nid: e-%d\nevent: migration\ndata: {\"id\":\"e-%d\",\"kind\":\"migration\",\"name\":\"m1\",\"object\":{\"id\":\"m1\",\"state\":\"transferring\"}}\n\n", seq, seq)
		}
		fmt.Fprint(w, "id: e-99\nevent: migration\ndata: {\"id\":") // cut in the middle: not delivered
	}))
	defer srv.Close()
	c := NewClient(srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Events(ctx, EventFilter{Kinds: []EventKind{EventMigration}, Names: []string{"m1", "m2"}}, "e-0")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for e := range st.C {
		if m, err := e.Migration(); err != nil || m.ID != "m1" {
			t.Errorf("event %s: %+v, %v", e.ID, m, err)
		}
		ids = append(ids, e.ID)
	}
	if strings.Join(ids, " ") != "e-1 e-2 e-3 e-4" {
		t.Errorf("events %v; want e-1 to e-4", ids)
	}
	if strings.Join(asked, " ") != "e-0 e-2 e-4" {
		t.Errorf("Last-Event-ID per connection: %q; want e-0, e-2, e-4", asked)
	}
	var ae *Error
	if err := st.Err(); err == nil || !strings.Contains(err.Error(), "token revoked") || !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("the stream ended with %v; want the 401", err)
	}
	if st.LastID() != "e-4" {
		t.Errorf("LastID %q", st.LastID())
	}
}

func TestEventFilter(t *testing.T) {
	f, err := ParseEventFilter(url.Values{"kind": {"vm,intent"}, "id": {"i1"}, "name": {" web , db"}})
	if err != nil || len(f.Kinds) != 2 || strings.Join(f.Names, ",") != "web,db,i1" {
		t.Fatalf("%+v, %v", f, err)
	}
	for _, tt := range []struct {
		e    Event
		want bool
	}{
		{Event{Kind: EventVM, Name: "web"}, true},
		{Event{Kind: EventVM, Name: "other"}, false},
		{Event{Kind: EventMigration, Name: "web"}, false},
		{Event{Kind: EventReset}, true},
	} {
		if f.Match(tt.e) != tt.want {
			t.Errorf("%+v matches: %v", tt.e, !tt.want)
		}
	}
	if _, err := ParseEventFilter(url.Values{"kind": {"host"}}); err == nil {
		t.Error("kind=host accepted")
	}
	if q := f.Query().Encode(); q != "kind=vm%2Cintent&name=web%2Cdb%2Ci1" {
		t.Errorf("query %s", q)
	}
}

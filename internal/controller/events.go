package controller

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
)

// DefaultEventHeartbeat is how often an idle event stream sends a
// comment: proxies and NATs keep the connection, and a client notices a
// dead one.
const DefaultEventHeartbeat = 15 * time.Second

// eventBatch bounds the events written between two flushes.
const eventBatch = 256

// eventWriteTimeout cuts a client that takes no data for this long: its
// handler is then free, and the client reconnects where it was.
const eventWriteTimeout = time.Minute

// events serves GET /v1/events: the live stream of VM, migration and
// intent changes as server-sent events (text/event-stream), each
//
//	id: EPOCH-SEQ
//	event: vm|migration|intent|reset
//	data: {api.Event as JSON}
//
// Filters: ?kind=vm,migration,intent and ?name= (or ?id=). A stream
// resumes after the Last-Event-ID header (or ?since=); ?follow=false
// sends what is kept after it and ends, for scripts. A member sees only
// its project's events.
func (c *Controller) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := api.ParseEventFilter(q)
	if err != nil {
		c.fail(w, r, errs.Invalid("%v", err))
		return
	}
	follow := true
	switch q.Get("follow") {
	case "", "true":
	case "false":
		follow = false
	default:
		c.fail(w, r, errs.Invalid("follow must be true or false, not %q", q.Get("follow")))
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("since")
	}
	p := auth.From(r.Context())
	visible := func(e api.Event) bool {
		return f.Match(e) && (p.Role == api.RoleAdmin || e.Kind == api.EventReset || e.Project == p.Project)
	}

	// Subscribed before the headers go out: a client that reads the state
	// once it has them misses no change after.
	sub := c.svc.Events().Subscribe(last)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx would hold the stream back
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	heartbeat := time.NewTicker(c.eventHeartbeat())
	defer heartbeat.Stop()
	for {
		evs, wake := sub.Next(eventBatch)
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout)) // not every writer has one
		for _, e := range evs {
			if !visible(e) {
				continue
			}
			if err := writeEvent(w, e); err != nil {
				return
			}
		}
		if len(evs) > 0 && rc.Flush() != nil {
			return
		}
		if len(evs) == eventBatch {
			continue // more are kept
		}
		if !follow {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.stopping:
			return // Shutdown waits for handlers; a stream would never end
		case <-wake:
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// writeEvent writes one server-sent event. Its data is one line:
// encoding/json escapes the newlines in strings.
func writeEvent(w http.ResponseWriter, e api.Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", e.ID, e.Kind, b)
	return err
}

func (c *Controller) eventHeartbeat() time.Duration {
	if c.cfg.EventHeartbeat > 0 {
		return c.cfg.EventHeartbeat
	}
	return DefaultEventHeartbeat
}

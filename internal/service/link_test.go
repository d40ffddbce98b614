package service

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The link gate lets limit transfers out of a source at once, hands the
// link to waiters first come first served, and a waiter that gives up
// neither holds the link nor loses another's turn.
func TestLinkGate(t *testing.T) {
	var g linkGate
	ctx := context.Background()
	if err := g.acquire(ctx, "h1", 1); err != nil {
		t.Fatal(err)
	}
	if err := g.acquire(ctx, "h2", 1); err != nil { // another source: its own link
		t.Fatal(err)
	}
	if !g.busy("h1", 1) || g.busy("h1", 2) || g.busy("h1", 0) {
		t.Fatal("busy: want busy at limit 1 only")
	}

	// A waiter that gives up leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- g.acquire(cctx, "h1", 1) }()
	waitFor(t, func() bool { return g.waiting("h1") })
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	if g.waiting("h1") {
		t.Fatal("a cancelled waiter stayed in the queue")
	}

	// Two waiters get the link in the order they came.
	order := make(chan string, 2)
	for _, name := range []string{"first", "second"} {
		go func() {
			if err := g.acquire(ctx, "h1", 1); err == nil {
				order <- name
			}
		}()
		waitFor(t, func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.queue["h1"]) == map[string]int{"first": 1, "second": 2}[name]
		})
	}
	g.release("h1")
	if got := <-order; got != "first" {
		t.Fatalf("%s got the link first", got)
	}
	select {
	case got := <-order:
		t.Fatalf("%s got the link while first holds it", got)
	case <-time.After(50 * time.Millisecond):
	}
	g.release("h1")
	if got := <-order; got != "second" {
		t.Fatalf("then %s", got)
	}
	g.release("h1")
	if g.busy("h1", 1) {
		t.Fatal("the link stayed taken after every release")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

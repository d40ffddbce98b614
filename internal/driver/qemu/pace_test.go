package qemu

import (
	"testing"
	"time"
)

// Post-copy pacing lowers the background limit by what a window sent
// above the cap, raises it back when the move falls below, and keeps it
// between half the cap and the cap.
func TestPostCopyPacing(t *testing.T) {
	const ceiling = 125e6
	var p pace
	at := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	if _, ok := p.next(0, at, ceiling); ok || p.limit != paceStart*ceiling {
		t.Fatalf("first reading: limit %v; want %v", p.limit, paceStart*ceiling)
	}
	p.limit = ceiling // as if the last window had raised it back
	if _, ok := p.next(10e6, at.Add(100*time.Millisecond), ceiling); ok {
		t.Fatal("changed the limit before a window passed")
	}
	// 56 MB in 0.4 s: 140 MB/s, 15 MB/s above the cap.
	lim, ok := p.next(56e6, at.Add(400*time.Millisecond), ceiling)
	if !ok || lim != 110e6 {
		t.Fatalf("at 140 MB/s: limit %v, %v; want 110 MB/s", lim, ok)
	}
	p.limit = lim
	// At the cap: no change.
	if lim, ok := p.next(106e6, at.Add(800*time.Millisecond), ceiling); ok {
		t.Errorf("at the cap: limit moved to %v", lim)
	}
	// 20 MB in 0.4 s: 50 MB/s (the guest faults less): back up to the cap.
	if lim, ok := p.next(126e6, at.Add(1200*time.Millisecond), ceiling); !ok || lim != ceiling {
		t.Errorf("at 50 MB/s: limit %v, %v; want the cap", lim, ok)
	}
	// Far above: never under half the cap.
	p.limit = ceiling
	if lim, ok := p.next(326e6, at.Add(1600*time.Millisecond), ceiling); !ok || lim != ceiling/2 {
		t.Errorf("at 500 MB/s: limit %v, %v; want half the cap", lim, ok)
	}
}

package agent

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/guestlog"
)

// follower collects the lines of a followed console.
type follower struct {
	mu    sync.Mutex
	lines []string
}

func follow(t *testing.T, ctx context.Context, url string) *follower {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	f := &follower{}
	go func() {
		defer resp.Body.Close()
		s := bufio.NewScanner(resp.Body)
		for s.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, s.Text())
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *follower) count(match func(string) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, l := range f.lines {
		if match(l) {
			n++
		}
	}
	return n
}

// inOrder fails unless the heartbeats f got count up without repeats: a
// repeat means it was sent part of the log twice.
func (f *follower) inOrder(t *testing.T, name string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var last int64 = -1
	for _, l := range f.lines {
		if hb, ok := guestlog.Parse(l); ok {
			if hb.Counter <= last {
				t.Errorf("%s: heartbeat %d after %d: part of the log was sent again", name, hb.Counter, last)
				return
			}
			last = hb.Counter
		}
	}
}

func isFiller(l string) bool { return strings.HasPrefix(l, "filler ") }
func isBeat(l string) bool   { _, ok := guestlog.Parse(l); return ok }

// A followed console carries on across a cut of the log's head (the
// driver capping it): a follower that was there sees every line once, and
// one that starts from offset 0 afterwards gets the kept tail once, then
// what comes — never part of the log twice.
func TestConsoleFollowAcrossCut(t *testing.T) {
	state := t.TempDir()
	d, err := fake.New(fake.Config{StateDir: state, BootDelay: time.Millisecond, HeartbeatHz: 50,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	if err := d.Create(ctx, driver.VMSpec{ID: resizeID, Name: "r", VCPUs: 1, MemoryMiB: 128}); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, resizeID); err != nil {
		t.Fatal(err)
	}
	_, base := resizeAgentWith(t, d)
	url := base + "/v1/vms/" + resizeID + "/console?follow=true"
	log := filepath.Join(state, "vms", resizeID, "console.log")
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	before := follow(t, fctx, url)
	waitFor("heartbeats", func() bool { return before.count(isBeat) >= 3 })

	// The guest prints 2 MiB; once the follower has it, the log is cut.
	const fillers = 2 << 20 / 64
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	line := "filler " + strings.Repeat("x", 56) + "\n"
	for range fillers {
		f.WriteString(line)
	}
	f.Close()
	waitFor("the filler", func() bool { return before.count(isFiller) >= fillers })
	n, err := driver.CapLog(log, 1<<20, 512<<10)
	if err != nil || n == 0 {
		t.Fatalf("cap cut %d bytes (%v); want a cut", n, err)
	}
	after := follow(t, fctx, url) // from offset 0, which was cut
	waitFor("the kept tail", func() bool { return after.count(isFiller) > 0 })
	time.Sleep(100 * time.Millisecond) // the rest of the first read
	beats, afterBeats := before.count(isBeat), after.count(isBeat)
	waitFor("heartbeats after the cut", func() bool {
		return before.count(isBeat) >= beats+10 && after.count(isBeat) >= afterBeats+10
	})
	cancel()

	if got := before.count(isFiller); got != fillers {
		t.Errorf("the follower got %d filler lines; want each of the %d once", got, fillers)
	}
	if got := after.count(isFiller); got == 0 || got >= fillers {
		t.Errorf("the follower from 0 got %d filler lines; want the kept ones, once (fewer than %d)", got, fillers)
	}
	before.inOrder(t, "follower before the cut")
	after.inOrder(t, "follower from 0 after the cut")
}

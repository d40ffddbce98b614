package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/errs"
)

func TestStallWatch(t *testing.T) {
	t0 := time.Now()
	var s stallWatch
	for _, tc := range []struct {
		after time.Duration
		moved int64
		want  bool
	}{
		{0, 0, false},
		{stallTimeout - time.Second, 0, false},
		{stallTimeout, 0, true},                // nothing moved for the whole timeout
		{stallTimeout + time.Second, 5, false}, // it moves again: the clock restarts
		{2*stallTimeout - time.Second, 5, false},
		{2*stallTimeout + time.Second, 5, true},
	} {
		if got := s.stalled(t0.Add(tc.after), tc.moved); got != tc.want {
			t.Errorf("after %s with %d moved: stalled = %v; want %v", tc.after, tc.moved, got, tc.want)
		}
	}
}

// The spans without progress the metrics record: each ends when the
// count moves again, measured from the read that first saw it stand
// still; the one a transfer ends in is still open.
func TestStallSpans(t *testing.T) {
	t0 := time.Now()
	var s stallWatch
	read := func(after time.Duration, moved int64) time.Duration {
		now := t0.Add(after)
		d := s.resumed(now, moved)
		s.stalled(now, moved)
		return d
	}
	for _, tc := range []struct {
		after time.Duration
		moved int64
		want  time.Duration
	}{
		{0, 0, 0}, // the first read: nothing to compare with
		{time.Second, 10, time.Second},
		{2 * time.Second, 10, 0}, // standing still: not over yet
		{7 * time.Second, 10, 0},
		{8 * time.Second, 20, 7 * time.Second}, // moving again after 7 s
	} {
		if got := read(tc.after, tc.moved); got != tc.want {
			t.Errorf("after %s with %d moved: resumed = %s; want %s", tc.after, tc.moved, got, tc.want)
		}
	}
	if got := s.open(t0.Add(11 * time.Second)); got != 3*time.Second {
		t.Errorf("open = %s; want 3s", got)
	}
	var fresh stallWatch
	if got := fresh.open(t0); got != 0 {
		t.Errorf("a watch that read nothing is open %s; want 0", got)
	}
}

func TestWhileUnavailable(t *testing.T) {
	calls := 0
	err := waitUnavailable(context.Background(), agentOutage, func(context.Context) error {
		if calls++; calls < 3 {
			return errs.Unavailable("agent restarting")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("err %v after %d calls; want nil after 3", err, calls)
	}
	calls = 0
	err = waitUnavailable(context.Background(), agentOutage, func(context.Context) error { calls++; return errs.Conflict("busy") })
	if !errors.Is(err, errs.ErrConflict) || calls != 1 {
		t.Errorf("err %v after %d calls; want the conflict at once", err, calls)
	}
}

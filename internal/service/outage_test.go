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

package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/qmp"
	"github.com/godwit/godwit/internal/qmp/qmptest"
)

var ctx = context.Background()

func TestRunConcurrentRepliesMatchByID(t *testing.T) {
	srv := qmptest.New(t, func(cmd string, args json.RawMessage) (any, error) {
		var a struct{ N int }
		_ = json.Unmarshal(args, &a)
		time.Sleep(time.Duration(50-a.N) * time.Millisecond) // answer out of order
		return map[string]int{"n": a.N}, nil
	})
	m, err := qmp.Dial(ctx, srv.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var res struct{ N int }
			if err := m.Run(ctx, "echo", map[string]int{"N": i}, &res); err != nil || res.N != i {
				t.Errorf("call %d got %d, %v", i, res.N, err)
			}
		}(i)
	}
	wg.Wait()
}

func TestErrorsTimeoutsAndClose(t *testing.T) {
	block := make(chan struct{})
	srv := qmptest.New(t, func(cmd string, _ json.RawMessage) (any, error) {
		switch cmd {
		case "fail":
			return nil, &qmp.Error{Class: "DeviceNotFound", Desc: "no such device"}
		case "hang":
			<-block
		}
		return nil, nil
	})
	defer close(block)
	m, err := qmp.Dial(ctx, srv.Path)
	if err != nil {
		t.Fatal(err)
	}
	var qe *qmp.Error
	if err := m.Run(ctx, "fail", nil, nil); !errors.As(err, &qe) || qe.Class != "DeviceNotFound" {
		t.Errorf("fail = %v; want a *qmp.Error of class DeviceNotFound", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := m.Run(tctx, "hang", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang = %v; want deadline exceeded", err)
	}
	if err := m.Run(ctx, "ok", nil, nil); err != nil {
		t.Errorf("a call after a timed-out one: %v", err)
	}
	srv.Close()
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("monitor did not notice the server closing")
	}
	if err := m.Run(ctx, "ok", nil, nil); !errors.Is(err, qmp.ErrClosed) {
		t.Errorf("call on a closed connection = %v; want ErrClosed", err)
	}
}

func TestEvents(t *testing.T) {
	srv := qmptest.New(t, func(string, json.RawMessage) (any, error) { return nil, nil })
	m, err := qmp.Dial(ctx, srv.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv.Event("MIGRATION", map[string]string{"status": "completed"})
	select {
	case ev := <-m.Events():
		if ev.Name != "MIGRATION" || string(ev.Data) != `{"status":"completed"}` || ev.Timestamp.IsZero() {
			t.Errorf("event = %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	// Unread events beyond the buffer are dropped, never blocking replies.
	for i := 0; i < qmp.EventBuffer+10; i++ {
		srv.Event("SPAM", map[string]int{"i": i})
	}
	if err := m.Run(ctx, "ok", nil, nil); err != nil {
		t.Fatalf("reply blocked behind events: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.Dropped() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.Dropped() == 0 {
		t.Error("no events counted as dropped")
	}
}

func TestDialRejectsNonQMP(t *testing.T) {
	if _, err := qmp.Dial(ctx, "/nonexistent/qmp.sock"); err == nil {
		t.Fatal("dial of a missing socket succeeded")
	}

}

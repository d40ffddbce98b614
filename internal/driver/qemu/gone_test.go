package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/qmp/qmptest"
)

// A VM released or deleted here never talks to its QMP path again. A
// migration's supervisor still holding it once kept redialling that path,
// and when the VM came back to this host it won the new QEMU's only QMP
// connection: the agent's own connect then timed out waiting for the
// greeting, and the migration failed (seen in the benchmark).
func TestGoneVMNeverConnects(t *testing.T) {
	var dials atomic.Int32
	srv := qmptest.New(t, func(cmd string, _ json.RawMessage) (any, error) {
		dials.Add(1)
		return map[string]any{"status": "active"}, nil
	})
	d, err := New(Config{StateDir: t.TempDir(), Accel: driver.AccelTCG, DirtySampleEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	v := &vm{st: vmState{Launch: launch{QMP: srv.Path}}}
	v.st.Launch.Spec.ID = "0c7b6a1e-0000-4000-8000-00000000000a"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.qmpRun(ctx, v, "query-migrate", nil, nil); err != nil {
		t.Fatalf("a live vm cannot talk to its monitor: %v", err)
	}
	v.mon.Close()
	v.mon, v.gone = nil, true
	if err := d.qmpRun(ctx, v, "query-migrate", nil, nil); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("a gone vm's query: %v; want not found", err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("the monitor answered %d commands; want only the live vm's 1", n)
	}
}

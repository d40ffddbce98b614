package audit_test

import (
	"context"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/audit"
)

// The first VM and action noted stay; outside a request nothing is noted.
func TestNote(t *testing.T) {
	audit.NoteVM(context.Background(), "x", "p") // no request: nothing happens
	ctx, n := audit.With(context.Background())
	audit.NoteVM(ctx, "vm-1", "alpha")
	audit.NoteVM(ctx, "vm-2", "beta") // touched on the way: not the target
	audit.NoteAction(ctx, "os-stop")
	audit.NoteAction(ctx, "other")
	var rec api.AuditRecord
	n.Fill(&rec)
	if rec.VMID != "vm-1" || rec.Project != "alpha" || rec.Action != "os-stop" {
		t.Errorf("filled %+v; want vm-1, alpha, os-stop", rec)
	}
}

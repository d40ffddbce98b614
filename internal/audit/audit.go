// Package audit carries, in a request's context, what its audit record
// (api.AuditRecord) learns while the request is handled and its method,
// path and status do not say: the VM it acted on and the action its body
// named. The controller's guard puts a Note in the context, notes the VM
// its path names, and writes the record when the request is answered;
// handlers and the service note what only they learn (the VM a create
// made, a Nova server action's name, a migration's kind).
package audit

import (
	"context"
	"sync"

	"github.com/godwit/godwit/api"
)

// Note is what one request's record learns on the way.
type Note struct {
	mu            sync.Mutex
	vmID, project string
	action        string
}

type key struct{}

// With returns ctx carrying a new, empty note.
func With(ctx context.Context) (context.Context, *Note) {
	n := &Note{}
	return context.WithValue(ctx, key{}, n), n
}

func from(ctx context.Context) *Note {
	n, _ := ctx.Value(key{}).(*Note)
	return n
}

// NoteVM notes the VM the request acts on, by ID, and its project. The
// first noted stays: the one the request's path names, or the one a
// create made — not another it touched on the way. Outside a request it
// does nothing.
func NoteVM(ctx context.Context, id, project string) {
	n := from(ctx)
	if n == nil || id == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.vmID == "" {
		n.vmID, n.project = id, project
	}
}

// NoteAction notes what the request asks where its path does not say
// (AuditRecord.Action); the first noted stays.
func NoteAction(ctx context.Context, action string) {
	n := from(ctx)
	if n == nil || action == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.action == "" {
		n.action = action
	}
}

// Fill copies what was noted into rec.
func (n *Note) Fill(rec *api.AuditRecord) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rec.VMID, rec.Project, rec.Action = n.vmID, n.project, n.action
}

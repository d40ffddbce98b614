package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
)

// How intents read: in the three levels' words. A plan row names the VM,
// the service operation it becomes, the driver strategy expected, where
// it goes, how long it should take and why.

// opWords names a service operation kind for people.
func opWords(kind api.OperationKind) string {
	switch kind {
	case api.OpLive:
		return "live migration"
	case api.OpCold:
		return "cold migration"
	case "":
		return "-"
	}
	return string(kind) // rebuild, resize, stop, none
}

// intentTitle says what was asked: "drain host1; on failure cold",
// "resize web-1 to 2 vCPUs, 512M memory", "migrate web-1 live to host3".
func intentTitle(in api.Intent) string {
	title := string(in.Kind) + " " + in.Target
	p := in.Params
	var parts []string
	switch in.Kind {
	case api.IntentMigrate:
		if m := p.Migrate; m != nil {
			if m.Kind != "" {
				title += " " + string(m.Kind)
			}
			if m.To != "" {
				title += " to " + m.To
			}
		}
		if p.Hold {
			parts = append(parts, "held for confirmation")
		}
	case api.IntentDrain:
		if p.OnFailure != "" {
			parts = append(parts, "on failure "+string(p.OnFailure))
		}
	case api.IntentEvacuate:
		if p.HostIsDown {
			parts = append(parts, "host declared down")
		}
		if p.AllowDataLoss {
			parts = append(parts, "data loss allowed")
		}
	case api.IntentResize:
		var to []string
		if p.VCPUs > 0 {
			to = append(to, fmt.Sprintf("%d vCPUs", p.VCPUs))
		}
		if p.MemoryMiB > 0 {
			to = append(to, mib(p.MemoryMiB)+" memory")
		}
		if p.DiskMiB > 0 {
			to = append(to, mib(p.DiskMiB)+" disk")
		}
		if len(to) > 0 {
			title += " to " + strings.Join(to, ", ")
		}
		if p.AllowRestart {
			parts = append(parts, "restart allowed")
		}
		if p.AllowMove {
			parts = append(parts, "move allowed")
		}
		if p.Hold {
			parts = append(parts, "held for confirmation")
		}
	case api.IntentRebuild:
		if p.Image != "" {
			title += " from image " + p.Image
		}
	}
	if len(parts) > 0 {
		title += "; " + strings.Join(parts, ", ")
	}
	return title
}

// route is FROM → TO; "?" for a destination not chosen yet; the one host
// of an operation that stays where it is.
func route(op api.Operation) string {
	move := op.Kind == api.OpLive || op.Kind == api.OpCold
	switch {
	case op.Source == "" && op.Destination == "":
		return "-"
	case op.Destination == "" && move:
		return op.Source + " → ?"
	case op.Destination == "" || op.Destination == op.Source:
		if op.Kind == api.OpNone || op.Source == "" {
			return dash(op.Source)
		}
		return op.Source + " (in place)"
	case op.Source == "":
		return "→ " + op.Destination
	}
	return op.Source + " → " + op.Destination
}

// human prints a duration in milliseconds briefly: <0.1s, 0.4s, 4.2s,
// 1m23s, 2h5m; "-" for none.
func human(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < 100*time.Millisecond:
		return "<0.1s"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// writePlan prints a dry run: the header, one row per operation, the
// predicted total and the notes.
func writePlan(w io.Writer, in api.Intent) error {
	fmt.Fprintf(w, "intent: %s (dry run — nothing changed)\n", intentTitle(in))
	if len(in.Operations) == 0 {
		fmt.Fprintln(w, "no operations: nothing to do")
	} else {
		t := newTable(w, "VM", "SERVICE OPERATION", "DRIVER STRATEGY", "FROM → TO", "PREDICTED", "REASON")
		for _, op := range in.Operations {
			t.row(op.VM, opWords(op.Kind), dash(op.Strategy), route(op), human(op.PredictedMS), dash(op.Reason))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "predicted total: %s\n", human(in.PredictedMS))
	writeNotes(w, in.Notes)
	return nil
}

func writeNotes(w io.Writer, notes []string) {
	if len(notes) == 0 {
		return
	}
	fmt.Fprintln(w, "notes:")
	for _, n := range notes {
		fmt.Fprintln(w, "  - "+n)
	}
}

// tally counts operations by state, in the order states are reached:
// "2 done, 1 running, 1 pending".
func tally(ops []api.Operation) string {
	n := map[api.OperationState]int{}
	for _, op := range ops {
		n[op.State]++
	}
	var parts []string
	for _, s := range []api.OperationState{api.OpDone, api.OpRunning, api.OpPending, api.OpSkipped, api.OpFailed, api.OpCancelled, api.OpPlanned} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
		}
	}
	if len(parts) == 0 {
		return "no operations"
	}
	return strings.Join(parts, ", ")
}

func writeIntents(w io.Writer, ins []api.Intent, now time.Time) error {
	t := newTable(w, "ID", "INTENT", "STATE", "OPERATIONS", "AGE")
	for _, in := range ins {
		t.row(in.ID, string(in.Kind)+" "+in.Target, string(in.State), tally(in.Operations), age(in.CreatedAt, now))
	}
	return t.flush()
}

// writeIntent prints one intent in full: what was asked, where it stands,
// and each operation with its state and reason.
func writeIntent(w io.Writer, in api.Intent) error {
	if in.State == api.IntentPlanned {
		return writePlan(w, in)
	}
	state := string(in.State)
	if in.Stopped && !in.State.Final() {
		state += " (stopped by a failure: nothing more starts)"
	}
	took := ""
	if !in.FinishedAt.IsZero() && !in.CreatedAt.IsZero() {
		took = human(in.FinishedAt.Sub(in.CreatedAt).Milliseconds())
	}
	if err := fields(w, "ID", in.ID, "Intent", intentTitle(in), "State", state, "Reason", in.Reason,
		"Operations", tally(in.Operations), "Predicted", human(in.PredictedMS), "Took", took,
		"Created", timestamp(in.CreatedAt), "Finished", timestamp(in.FinishedAt)); err != nil {
		return err
	}
	if len(in.Operations) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "VM", "SERVICE OPERATION", "STATE", "DRIVER STRATEGY", "FROM → TO", "MIGRATION", "REASON")
		for _, op := range in.Operations {
			state := string(op.State)
			if op.Step != "" && op.State == api.OpRunning {
				state += " (" + op.Step + ")"
			}
			t.row(op.VM, opWords(op.Kind), state, dash(op.Strategy), route(op), dash(op.MigrationID), dash(op.Reason))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	writeNotes(w, in.Notes)
	return nil
}

// writeSummary prints how an intent ended: each VM's outcome, then the
// intent's final state.
func writeSummary(w io.Writer, in api.Intent) error {
	if len(in.Operations) > 0 {
		t := newTable(w, "VM", "OUTCOME", "SERVICE OPERATION", "FROM → TO", "TOOK", "REASON")
		for _, op := range in.Operations {
			took := "-"
			if !op.StartedAt.IsZero() && !op.FinishedAt.IsZero() {
				took = human(op.FinishedAt.Sub(op.StartedAt).Milliseconds())
			}
			t.row(op.VM, string(op.State), opWords(op.Kind), route(op), took, dash(op.Reason))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	line := fmt.Sprintf("intent %s (%s): %s — %s", in.ID, intentTitle(in), in.State, tally(in.Operations))
	if in.Reason != "" {
		line += "; " + in.Reason
	}
	fmt.Fprintln(w, line)
	if in.State == api.IntentAwaitingConfirm {
		keep := "the new size"
		if in.Kind == api.IntentMigrate {
			keep = "it on its new host"
		}
		fmt.Fprintf(w, "keep %s: godwit intent confirm %s; undo it: godwit intent revert %s\n", keep, in.ID, in.ID)
	}
	return nil
}

// writeStarted says an intent was accepted and how to follow it.
func writeStarted(w io.Writer, in api.Intent) {
	fmt.Fprintf(w, "intent %s started: %s — %s, predicted %s\n", in.ID, intentTitle(in), tally(in.Operations), human(in.PredictedMS))
	fmt.Fprintf(w, "follow it with: godwit intent watch %s (cancel: godwit intent cancel %s)\n", in.ID, in.ID)
}

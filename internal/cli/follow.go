package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/godwit/godwit/api"
)

// followIntent shows an intent's operations until the intent is final,
// then each VM's outcome. On a terminal one line per operation redraws in
// place; otherwise a line is appended when an operation moves on. It
// fails when the intent ended failed, partial or cancelled, so that
// scripts see it. The context ending (Ctrl-C) stops the watching only.
// Changes come from the event stream (events.go), as they happen.
func (a *app) followIntent(ctx context.Context, id string) error {
	if !a.structured() {
		fmt.Fprintf(a.out, "following intent %s (Ctrl-C stops watching, not the intent; to stop it: godwit intent cancel %s)\n", id, id)
	}
	feed, err := a.followIntentFeed(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return stoppedWatching(id)
		}
		return err
	}
	defer feed.close()
	v := &liveView{w: a.out, tty: a.tty, width: termWidth(a.out), last: map[int]string{}}
	for {
		in, migs, err := feed.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return stoppedWatching(id)
			}
			return err
		}
		if in.State.Settled() { // ended, or held (a resize, a cold migration) awaiting the user
			v.erase()
			if !a.structured() {
				fmt.Fprintln(a.out)
			}
			if a.structured() {
				if err := a.print(in); err != nil {
					return err
				}
			} else if err := a.writeEnd(in); err != nil {
				return err
			}
			return intentOutcome(in)
		}
		if !a.structured() {
			v.draw(opLine{key: string(in.State) + fmt.Sprint(in.Stopped), text: intentHeader(in)}, opLines(in, migs))
		}
	}
}

func (a *app) writeEnd(in api.Intent) error {
	if in.State == api.IntentPlanned {
		return writePlan(a.out, in)
	}
	return writeSummary(a.out, in)
}

func stoppedWatching(id string) error {
	return fmt.Errorf("stopped watching; intent %s carries on (follow it again: godwit intent watch %s; stop it: godwit intent cancel %s)", id, id, id)
}

// intentOutcome is nil when the intent did all it was asked (or was only
// a plan), else an error naming how it ended.
func intentOutcome(in api.Intent) error {
	switch in.State {
	case api.IntentCompleted, api.IntentPlanned, api.IntentReverted:
		return nil
	case api.IntentAwaitingConfirm:
		return nil // done and held: writeSummary said how to confirm or revert
	}
	return fmt.Errorf("intent %s ended %s; see each VM's reason above or with: godwit intent show %s", in.ID, in.State, in.ID)
}

func intentHeader(in api.Intent) string {
	h := fmt.Sprintf("intent %s: %s — %s (%s)", in.ID, intentTitle(in), in.State, tally(in.Operations))
	if in.Stopped {
		h += " — stopped by a failure: nothing more starts"
	}
	return h
}

// opLine is one operation's line and the key that says whether it moved
// on enough to be printed again where lines are appended.
type opLine struct {
	key, text string
}

// opLines renders each operation: VM, service operation, state, then
// for a running migration its state, bar, percent, throughput and ETA,
// else its step or where it goes, and the reason once it has one.
func opLines(in api.Intent, migs map[string]api.Migration) []opLine {
	nameW := 2
	for _, op := range in.Operations {
		nameW = max(nameW, utf8.RuneCountInString(op.VM))
	}
	lines := make([]opLine, 0, len(in.Operations))
	for _, op := range in.Operations {
		head := fmt.Sprintf("%-*s  %-14s  %-9s", nameW, op.VM, opWords(op.Kind), op.State)
		key := string(op.Kind) + "|" + string(op.State) + "|" + op.Step
		var detail string
		m, ok := migs[op.MigrationID]
		switch {
		case op.State == api.OpRunning && ok:
			pct := migrationPercent(m.Progress)
			detail = fmt.Sprintf("%-14s %s %3.0f%%", m.State, bar(pct, 16), pct)
			if m.Progress.Throughput > 0 {
				detail += fmt.Sprintf("  %s/s", byteSize(int64(m.Progress.Throughput)))
			}
			if m.Progress.ETAMS > 0 {
				detail += "  ETA " + human(m.Progress.ETAMS)
			}
			detail += "  " + route(op)
			key += fmt.Sprintf("|%s|%d", m.State, int(pct)/10)
		case op.State == api.OpRunning && op.Step != "":
			detail = op.Step + "  " + route(op)
		case op.Reason != "" && op.State != api.OpPending && op.State != api.OpRunning:
			detail = route(op) + "  " + op.Reason
		default:
			detail = route(op)
		}
		lines = append(lines, opLine{key: key, text: strings.TrimRight(head+"  "+detail, " ")})
	}
	return lines
}

// migrationPercent is how much of the memory (or, for a move that copies
// only a disk, of the disk) has crossed.
func migrationPercent(p api.MigrationProgress) float64 {
	switch {
	case p.MemoryTotal > 0:
		return 100 * float64(p.MemoryTotal-p.MemoryRemaining) / float64(p.MemoryTotal)
	case p.DiskTotal > 0:
		return 100 * float64(p.DiskTransferred) / float64(p.DiskTotal)
	}
	return 0
}

// bar is the progress bar of godwit migrate: [######----------].
func bar(pct float64, width int) string {
	fill := min(max(int(pct/100*float64(width)), 0), width)
	return "[" + strings.Repeat("#", fill) + strings.Repeat("-", width-fill) + "]"
}

// liveView shows a header and lines that change. On a terminal it
// redraws them in place (each cut to the terminal's width, so that
// counting lines to move back up stays true); elsewhere it appends the
// header when it changes and an operation's line when its key does.
type liveView struct {
	w     io.Writer
	tty   bool
	width int            // of the terminal; 0 when unknown
	drawn int            // lines on screen from the last draw
	frame string         // what the last draw wrote
	head  string         // key of the last header printed
	last  map[int]string // operation index → last key printed
}

func (v *liveView) draw(header opLine, lines []opLine) {
	if v.tty {
		var frame strings.Builder
		for _, l := range append([]opLine{header}, lines...) {
			frame.WriteString("\033[K" + v.cut(l.text) + "\n")
		}
		if v.drawn > 0 && frame.String() == v.frame {
			return // events come for changes the lines do not show
		}
		var b strings.Builder
		if v.drawn > 0 {
			fmt.Fprintf(&b, "\033[%dF", v.drawn) // to the start of the first line drawn
		}
		b.WriteString(frame.String())
		b.WriteString("\033[J") // lines of a longer earlier frame
		io.WriteString(v.w, b.String())
		v.drawn, v.frame = len(lines)+1, frame.String()
		return
	}
	if header.key != v.head {
		fmt.Fprintln(v.w, header.text)
		v.head = header.key
	}
	for i, l := range lines {
		if v.last[i] != l.key {
			fmt.Fprintln(v.w, l.text)
			v.last[i] = l.key
		}
	}
}

// erase removes the drawn lines from a terminal, for the summary.
func (v *liveView) erase() {
	if v.tty && v.drawn > 0 {
		fmt.Fprintf(v.w, "\033[%dF\033[J", v.drawn)
		v.drawn = 0
	}
}

func (v *liveView) cut(s string) string {
	if v.width <= 1 || utf8.RuneCountInString(s) < v.width {
		return s
	}
	r := []rune(s)
	return string(r[:v.width-2]) + "…"
}

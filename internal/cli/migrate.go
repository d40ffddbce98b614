package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

func (a *app) migrateCmd() *cobra.Command {
	var req api.MigrateRequest
	var live, cold, wait, dryRun bool
	cmd := &cobra.Command{
		Use:   "migrate VM [--live|--cold [--hold]] [--to HOST]",
		Short: "Move a VM to another host (live when it can, else cold)",
		Long: `Move a VM to another host: one live or one cold migration.

--live moves it while it runs; --cold stops it, moves it and starts it.
With neither, the controller moves it live when it runs and a host can
take it live, else cold. --dry-run shows what it would do and changes
nothing.

--hold (cold only; it implies --cold) holds the move for confirmation,
as Nova's cold migrate does: once the VM runs on its new host the move's
intent awaits 'godwit intent confirm ID' (it stays there) or 'godwit
intent revert ID' (a cold move back to its old host). Until then the VM
is neither migrated nor resized again.`,
		Example: `  godwit migrate web-1
  godwit migrate web-1 --dry-run
  godwit migrate web-1 --live --to host3 --max-downtime 100 --bandwidth 125 --wait
  godwit migrate web-1 --cold --hold --wait && godwit intent confirm ID`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case live && cold:
				return usagef("choose one of --live and --cold (or neither: live when possible, else cold)")
			case live && req.Hold:
				return usagef("--hold holds a cold migration; a live one is not held for confirmation: use --cold --hold, or drop --hold")
			case live:
				req.Kind = api.KindLive
			case cold || req.Hold:
				req.Kind = api.KindCold
			}
			if dryRun {
				in, err := a.client().MigratePlan(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				return a.printPlan(in)
			}
			m, err := a.client().Migrate(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if !wait {
				if a.structured() {
					return a.print(m)
				}
				fmt.Fprintf(a.out, "%s migration %s of %s: %s → %s (follow it with: godwit migration watch %s)\n",
					m.Kind, m.ID, m.VM, m.Source, m.Destination, m.ID)
				a.heldHint(m)
				return nil
			}
			if err := a.watch(cmd.Context(), m.ID); err != nil {
				return err
			}
			if !a.structured() {
				a.heldHint(m)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&live, "live", false, "move the running VM without stopping it")
	f.BoolVar(&cold, "cold", false, "stop, move and start the VM")
	f.StringVar(&req.To, "to", "", "destination host (default: the scheduler chooses)")
	f.IntVar(&req.MaxDowntimeMS, "max-downtime", 0, "longest pause at the switch-over, in `ms` (default: the cluster setting)")
	f.IntVar(&req.BandwidthMBPerS, "bandwidth", 0, "bandwidth cap, in `MB/s` (megabytes: 125 is a 1 Gbit/s link; default: the cluster setting)")
	f.StringVar((*string)(&req.Policy), "policy", "", "how a live migration converges: auto (measure, predict, choose), pre-copy, auto-converge or post-copy (docs/migration-tuning.md; default: the cluster setting, built-in auto)")
	f.BoolVar(&req.PostCopy, "post-copy", false, "permit post-copy (shared disks): the policy may switch to it, and so may 'migration complete'")
	f.BoolVar(&req.NoPostCopy, "no-post-copy", false, "never post-copy for this move (the auto policy throttles instead)")
	f.BoolVar(&req.AutoConverge, "auto-converge", false, "the auto-converge policy: QEMU throttles the vCPUs, more each pass (same as --policy auto-converge)")
	f.BoolVar(&dryRun, "dry-run", false, "show the plan (which kind, where, the driver strategy, how long) and change nothing")
	f.BoolVar(&req.Hold, "hold", false, "cold only: once moved, await 'godwit intent confirm ID' (stay) or 'godwit intent revert ID' (move back)")
	f.BoolVar(&wait, "wait", false, "show progress until the migration ends")
	return cmd
}

// heldHint says how to end a held migration (MigrateRequest.Hold): its
// intent awaits confirmation once the move is done.
func (a *app) heldHint(m api.Migration) {
	if m.Intent == "" {
		return
	}
	fmt.Fprintf(a.out, "held: once moved, intent %s awaits confirmation; keep vm %s on %s: godwit intent confirm %s; move it back to %s: godwit intent revert %s\n",
		m.Intent, m.VM, m.Destination, m.Intent, m.Source, m.Intent)
}

func (a *app) migrationCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "migration", Short: "List, follow and abort migrations"}
	var vm string
	list := &cobra.Command{
		Use:   "list",
		Short: "List migrations, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ms, err := a.client().Migrations(cmd.Context(), vm)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(ms)
			}
			t := newTable(a.out, "ID", "VM", "KIND", "STATE", "FROM", "TO", "STRATEGY", "AGE")
			for _, m := range ms {
				t.row(m.ID, m.VM, string(m.Kind), string(m.State), m.Source, m.Destination, string(m.Strategy), age(m.CreatedAt, time.Now()))
			}
			return t.flush()
		},
	}
	list.Flags().StringVar(&vm, "vm", "", "only this VM's migrations")
	cmd.AddCommand(list,
		&cobra.Command{
			Use:   "show ID",
			Short: "Show a migration: its phases, progress and outcome",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				m, err := a.client().Migration(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(m)
				}
				return writeMigration(a.out, m)
			},
		},
		&cobra.Command{
			Use:   "watch ID",
			Short: "Follow a migration's progress until it ends",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.watch(cmd.Context(), args[0])
			},
		},
		&cobra.Command{
			Use:   "complete ID",
			Short: "Force a live migration that does not converge to finish (post-copy where allowed, else a brief pause)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				m, err := a.client().CompleteMigration(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(m)
				}
				d := m.Decisions[len(m.Decisions)-1]
				fmt.Fprintf(a.out, "migration %s of %s: %s\n", m.ID, m.VM, d.Action)
				return nil
			},
		},
		&cobra.Command{
			Use:   "abort ID",
			Short: "Cancel a running migration; the VM stays where it was",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				m, err := a.client().AbortMigration(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(m)
				}
				fmt.Fprintf(a.out, "aborting migration %s of %s; it rolls back (godwit migration watch %s)\n", m.ID, m.VM, m.ID)
				return nil
			},
		})
	return cmd
}

// watch shows a migration's progress until it ends, then its summary. On
// a terminal the progress line redraws in place; otherwise a line is
// printed when the state or the percentage moves. Changes come from the
// event stream (events.go), as they happen.
func (a *app) watch(ctx context.Context, id string) error {
	tty := a.tty
	last := ""
	feed, err := a.followMigration(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer feed.close()
	for {
		m, err := feed.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C stops the watching only
			}
			return err
		}
		if m.State.Final() {
			if tty {
				fmt.Fprint(a.out, "\r\033[K")
			}
			if a.structured() {
				return a.print(m)
			}
			if err := writeMigration(a.out, m); err != nil {
				return err
			}
			if m.State != api.MigCompleted {
				return fmt.Errorf("migration %s ended %s: %s", m.ID, m.State, m.Reason)
			}
			return nil
		}
		line := progressLine(m)
		switch {
		case tty && line != last:
			fmt.Fprint(a.out, "\r\033[K"+line)
		case line != last && !a.structured():
			fmt.Fprintln(a.out, line)
		}
		last = line
	}
}

// progressLine renders: state, a bar, percent, throughput, dirty rate,
// pass and ETA.
func progressLine(m api.Migration) string {
	p := m.Progress
	pct := migrationPercent(p)
	line := fmt.Sprintf("%-14s %s %3.0f%%  %s/s", m.State, bar(pct, 24), pct, byteSize(int64(p.Throughput)))
	if p.DirtyRate > 0 {
		line += fmt.Sprintf("  dirty %s/s", byteSize(p.DirtyRate))
	}
	if p.Pass > 0 {
		line += fmt.Sprintf("  pass %d", p.Pass)
	}
	if p.ETAMS > 0 {
		line += "  ETA " + (time.Duration(p.ETAMS) * time.Millisecond).Round(100*time.Millisecond).String()
	}
	return line
}

func writeMigration(w io.Writer, m api.Migration) error {
	var phases []string
	for i, ph := range m.Phases {
		d := ""
		if i+1 < len(m.Phases) {
			d = " " + m.Phases[i+1].At.Sub(ph.At).Round(time.Millisecond).String()
		}
		phases = append(phases, string(ph.State)+d)
	}
	p := m.Progress
	kv := []string{"ID", m.ID, "VM", m.VM, "Kind", string(m.Kind), "State", string(m.State), "Reason", m.Reason,
		"From", m.Source, "To", m.Destination, "Strategy", string(m.Strategy), "Phases", strings.Join(phases, " → ")}
	if cv := m.Convergence; cv != nil {
		kv = append(kv, "Policy", string(cv.Policy), "Converging by", convergingBy(*cv))
		if cv.DirtyRateSource != "" {
			kv = append(kv, "Dirty rate", fmt.Sprintf("%s/s (%s)", byteSize(cv.DirtyRate), cv.DirtyRateSource))
		}
		kv = append(kv, "Bandwidth", byteSize(cv.Bandwidth)+"/s")
		if cv.Prediction != "" {
			kv = append(kv, "Prediction", cv.Prediction)
		}
	} else if m.Policy != "" {
		kv = append(kv, "Policy", string(m.Policy))
	}
	if m.Encrypted {
		kv = append(kv, "Encrypted", "yes: TLS between the hosts, both ends authenticated")
	} else {
		kv = append(kv, "Encrypted", "no (a cluster without a CA, or insecure_migration on when it began)")
	}
	for _, d := range m.Decisions {
		kv = append(kv, "Decision", d.At.Format("15:04:05.000")+" "+d.Action+" ("+d.Reason+")")
	}
	if p := m.GuestPanic; p != nil {
		kv = append(kv, "Guest panic", guestPanic(*p)) // during the move or within a minute after
	}
	if p.MemoryTotal > 0 {
		mem := fmt.Sprintf("%s transferred of %s, %s remaining", byteSize(p.MemoryTransferred), byteSize(p.MemoryTotal), byteSize(p.MemoryRemaining))
		if p.MemoryZero > 0 {
			mem += fmt.Sprintf(" (%s of zero pages sent as markers)", byteSize(p.MemoryZero))
		}
		kv = append(kv, "Memory", mem)
	}
	if p.TotalTimeMS > 0 {
		kv = append(kv, "Total time", (time.Duration(p.TotalTimeMS) * time.Millisecond).String(),
			"Downtime", (time.Duration(p.DowntimeMS) * time.Millisecond).String())
		if m.Kind == api.KindLive {
			kv = append(kv, "Passes", fmt.Sprint(p.Pass))
		}
	}
	if p.DiskTotal > 0 {
		kv = append(kv, "Disk", fmt.Sprintf("%s copied of %s", byteSize(p.DiskTransferred), byteSize(p.DiskTotal)))
	}
	return fields(w, kv...)
}

// convergingBy says what makes a live migration finish, e.g.
// "auto-converge (vCPUs throttled to 91 %), post-copy not permitted".
func convergingBy(cv api.Convergence) string {
	s := string(cv.Strategy)
	if cv.Throttle > 0 {
		s += fmt.Sprintf(" (vCPUs throttled to %d %%)", cv.Throttle)
	}
	if cv.PredictedMS > 0 {
		s += ", predicted " + (time.Duration(cv.PredictedMS) * time.Millisecond).Round(100*time.Millisecond).String()
	}
	if !cv.PostCopyAllowed {
		s += ", post-copy not permitted"
	}
	return s
}

// byteSize prints a byte count in decimal units, as migration rates are.
func byteSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

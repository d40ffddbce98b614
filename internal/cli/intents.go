package cli

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

// The intent commands: drain, evacuate, resize, rebuild and intent. Each
// asks the controller for an intent; the controller turns it into
// service operations and keeps the record. --dry-run shows the plan,
// --wait follows the intent to its end.

func (a *app) drainCmd() *cobra.Command {
	var req api.DrainRequest
	var wait bool
	cmd := &cobra.Command{
		Use:   "drain HOST",
		Short: "Move every VM off a running host, for maintenance",
		Long: `Move every VM off a host that is up: one live migration per running VM,
one cold migration per stopped one. The host leaves scheduling at once
('godwit host enable HOST' returns it).

--on-failure says what happens to a VM that cannot move live:
  skip   it stays where it is, reported (default)
  cold   it is moved cold instead
  stop   it is shut down where it is
  abort  the drain starts no further moves and ends failed

See the plan first with --dry-run; follow a drain with --wait or
'godwit intent watch ID'; cancel it with 'godwit intent cancel ID'.`,
		Example: `  godwit drain host1 --dry-run
  godwit drain host1 --on-failure cold --max-per-source 2 --bandwidth 125 --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.OnFailure != "" && !slices.Contains(api.FailurePolicies, req.OnFailure) {
				return usagef("--on-failure must be skip, cold, stop or abort, not %q", req.OnFailure)
			}
			if err := notNegative(cmd, "max-per-source", "max-transfers-per-source", "max-per-destination", "max-per-cluster", "max-parallel", "bandwidth", "max-downtime"); err != nil {
				return err
			}
			in, err := a.client().Drain(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.intentStarted(cmd.Context(), in, req.DryRun, wait)
		},
	}
	f := cmd.Flags()
	f.StringVar((*string)(&req.OnFailure), "on-failure", "", "what to do with a VM that cannot move live: skip, cold, stop or abort (default skip)")
	f.IntVar(&req.MaxPerSource, "max-per-source", 0, "moves out of the host at once (default: the cluster setting, built-in 2; godwit cluster settings show)")
	f.IntVar(&req.MaxTransfersPerSource, "max-transfers-per-source", 0, "of those, moves sending memory at once; the others prepare and wait for the link (default: the cluster setting, built-in 1)")
	f.IntVar(&req.MaxPerDestination, "max-per-destination", 0, "moves into one destination at once (default: the cluster setting, built-in 1)")
	f.IntVar(&req.MaxPerCluster, "max-per-cluster", 0, "migrations in the whole cluster at once (default: the cluster setting, built-in 4)")
	f.IntVar(&req.BandwidthMBPerS, "bandwidth", 0, "bandwidth cap of each live migration, in `MB/s` (megabytes: 125 is a 1 Gbit/s link; default: the cluster setting)")
	f.IntVar(&req.MaxDowntimeMS, "max-downtime", 0, "longest pause at each switch-over, in `ms` (default: the cluster setting)")
	f.StringVar((*string)(&req.Policy), "policy", "", "how each live move converges: auto, pre-copy, auto-converge or post-copy (default: the cluster setting, built-in auto)")
	f.BoolVar(&req.DryRun, "dry-run", false, "show the plan and change nothing")
	f.BoolVar(&wait, "wait", false, "follow the drain until it ends")
	// Its name before the flags took the API's (max_per_cluster).
	f.IntVar(&req.MaxPerCluster, "max-parallel", 0, "")
	a.renamedFlag(cmd, "max-parallel", "max-per-cluster")
	return cmd
}

func (a *app) evacuateCmd() *cobra.Command {
	var req api.EvacuateRequest
	var wait bool
	cmd := &cobra.Command{
		Use:   "evacuate HOST",
		Short: "Rebuild every VM of a dead host on other hosts",
		Long: `Rebuild every VM of a host that is down on other hosts, with the same
names and ids. It is refused unless the host is proven down: its
heartbeats stopped and either its storage lease expired or you say it is
powered off or fenced (--host-is-down). A host that is only cut off may
still run its VMs and write their disks.

VMs on the shared pool keep their disks. A VM with a local disk is
refused unless --allow-data-loss: then it is rebuilt from its image and
its data is lost. For a host that is up, use 'godwit drain HOST'.`,
		Example: `  godwit evacuate host2 --dry-run
  godwit evacuate host2 --host-is-down --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := a.client().Evacuate(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.intentStarted(cmd.Context(), in, req.DryRun, wait)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&req.HostIsDown, "host-is-down", false, "your word that the host is powered off or fenced")
	f.BoolVar(&req.AllowDataLoss, "allow-data-loss", false, "rebuild VMs with local disks from their image (their data is lost)")
	f.BoolVar(&req.DryRun, "dry-run", false, "show the plan and change nothing")
	f.BoolVar(&wait, "wait", false, "follow the evacuation until it ends")
	return cmd
}

func (a *app) resizeCmd() *cobra.Command {
	var req api.ResizeRequest
	var memory, disk sizeFlag
	var wait bool
	cmd := &cobra.Command{
		Use:   "resize VM [--vcpus N] [--memory SIZE] [--disk SIZE] | [--flavor FLAVOR]",
		Short: "Change a VM's vCPUs, memory or disk, in place",
		Long: `Change a VM's vCPUs, memory or disk where it runs: vCPU and memory
hotplug and online disk growth while it runs, up to the ceilings it
started with. A resize is never a migration:

  --allow-restart  permits a restart in place when the change cannot be
                   made online
  --allow-move     permits a migration (live if possible) to a host with
                   room first, when the VM's host lacks it

--hold keeps the resize, once done, awaiting confirmation (Nova's
VERIFY_RESIZE): 'godwit intent confirm ID' keeps the new size, 'godwit
intent revert ID' goes back to the old sizes and, if it moved, the old
host. A resize that grew the disk cannot be reverted.

A stopped VM just gets the new size for its next start. Disks only grow.
--flavor takes all three sizes of a flavor (godwit flavor list), which
the VM then records. Sizes are in MiB unless they say otherwise: 512M,
2G, 1.5G, 2GiB.`,
		Example: `  godwit resize web-1 --vcpus 2 --memory 2G --dry-run
  godwit resize web-1 --flavor large --allow-restart --wait
  godwit resize web-1 --disk 20G --allow-restart --wait
  godwit resize web-1 --vcpus 4 --hold --wait && godwit intent confirm ID`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			sizes := f.Changed("vcpus") || f.Changed("memory") || f.Changed("disk")
			switch {
			case req.FlavorName != "" && sizes:
				return usagef("give --flavor or sizes (--vcpus, --memory, --disk), not both")
			case req.FlavorName == "" && !sizes:
				return usagef("say what to change: --vcpus, --memory or --disk, or --flavor")
			}
			if req.VCPUs < 0 {
				return usagef("--vcpus must be positive")
			}
			req.MemoryMiB, req.DiskMiB = int(memory), int(disk)
			in, err := a.client().Resize(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.intentStarted(cmd.Context(), in, req.DryRun, wait)
		},
	}
	f := cmd.Flags()
	f.IntVar(&req.VCPUs, "vcpus", 0, "number of vCPUs (default: unchanged)")
	f.StringVar(&req.FlavorName, "flavor", "", "take all three sizes of this flavor, by name or ID")
	f.Var(&memory, "memory", "memory size, e.g. 512M, 2G (default: unchanged)")
	f.Var(&disk, "disk", "disk size, e.g. 20G; disks only grow (default: unchanged)")
	f.BoolVar(&req.AllowRestart, "allow-restart", false, "restart the VM in place if the change cannot be made online")
	f.BoolVar(&req.AllowMove, "allow-move", false, "migrate the VM to a host with room first if its host lacks it")
	f.BoolVar(&req.Hold, "hold", false, "once done, await 'godwit intent confirm ID' or 'godwit intent revert ID'")
	f.BoolVar(&req.DryRun, "dry-run", false, "show the plan and change nothing")
	f.BoolVar(&wait, "wait", false, "follow the resize until it ends")
	return cmd
}

func (a *app) rebuildCmd() *cobra.Command {
	var req api.RebuildRequest
	var wait bool
	cmd := &cobra.Command{
		Use:   "rebuild VM [--image IMAGE]",
		Short: "Reimage a VM in place: its disk is replaced, its data lost",
		Long: `Reimage a VM where it is: same host, same name and id, a fresh disk
from its image (or from --image). The disk is replaced: data on it is
lost. See what would happen with --dry-run.`,
		Example: `  godwit rebuild web-1 --dry-run
  godwit rebuild web-1 --image debian --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !req.DryRun {
				fmt.Fprintf(a.errOut, "godwit: warning: rebuilding %s replaces its disk with a fresh one from the image: data on it is lost\n", args[0])
			}
			in, err := a.client().Rebuild(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.intentStarted(cmd.Context(), in, req.DryRun, wait)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Image, "image", "", "image to rebuild from (default: the VM's own)")
	f.BoolVar(&req.DryRun, "dry-run", false, "show the plan and change nothing")
	f.BoolVar(&wait, "wait", false, "follow the rebuild until it ends")
	return cmd
}

func (a *app) intentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "intent",
		Short: "List, show, follow, cancel, confirm and revert intents (drains, evacuations, resizes, rebuilds, migrations)",
	}
	var abortRunning bool
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Stop an intent: no new operations start; running migrations finish (or roll back with --abort-running)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := a.client().CancelIntent(cmd.Context(), args[0], api.CancelIntentRequest{AbortRunning: abortRunning})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(in)
			}
			running := "running migrations finish"
			if abortRunning {
				running = "running migrations are aborted and roll back"
			}
			fmt.Fprintf(a.out, "intent %s (%s) is %s: no new operations start; %s (follow it: godwit intent watch %s)\n",
				in.ID, intentTitle(in), in.State, running, in.ID)
			return nil
		},
	}
	cancel.Flags().BoolVar(&abortRunning, "abort-running", false, "abort the running migrations too (they roll back)")
	confirm := &cobra.Command{
		Use:   "confirm ID",
		Short: "Keep a held resize's new size (resize --hold) or a held cold migration's new host (migrate --cold --hold)",
		Long: `End an intent held for confirmation, keeping what it did: a held resize
(resize --hold) keeps its new size, a held cold migration (migrate --cold
--hold) leaves the VM on the host it moved to. The intent ends completed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := a.client().ConfirmResize(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(in)
			}
			kept := "the new size stays"
			if in.Kind == api.IntentMigrate && len(in.Operations) > 0 {
				kept = "vm " + in.Target + " stays on " + in.Operations[0].Destination
			}
			fmt.Fprintf(a.out, "intent %s (%s) is %s: %s\n", in.ID, intentTitle(in), in.State, kept)
			return nil
		},
	}
	var wait bool
	revert := &cobra.Command{
		Use:   "revert ID",
		Short: "Undo a held resize (resize --hold) or held cold migration (migrate --cold --hold): the old sizes and host",
		Long: `Undo a resize held for confirmation (resize --hold): the VM gets its old
vCPUs and memory back (online when it can, else by a restart in place if
the resize was allowed one), then, if the resize moved it, a cold move
back to its old host when that has room (else it stays, and the intent
says why). A resize that grew the disk cannot be reverted: disks never
shrink (a shrunk filesystem loses data); confirm it instead.

Undo a cold migration held for confirmation (migrate --cold --hold): a
cold move back to the host the VM came from, when that has room (else it
stays, and the intent says why).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := a.client().RevertResize(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			switch {
			case wait:
				return a.followIntent(cmd.Context(), in.ID)
			case a.structured():
				return a.print(in)
			}
			fmt.Fprintf(a.out, "intent %s (%s) is %s: %s (follow it: godwit intent watch %s)\n", in.ID, intentTitle(in), in.State, tally(in.Operations), in.ID)
			if in.Reason != "" {
				fmt.Fprintln(a.out, in.Reason)
			}
			return nil
		},
	}
	revert.Flags().BoolVar(&wait, "wait", false, "follow the revert until it ends")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list",
			Short: "List intents, newest first",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ins, err := a.client().Intents(cmd.Context())
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(ins)
				}
				return writeIntents(a.out, ins, time.Now())
			},
		},
		&cobra.Command{
			Use:   "show ID",
			Short: "Show an intent: its operations, their states and reasons",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				in, err := a.client().Intent(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(in)
				}
				return writeIntent(a.out, in)
			},
		},
		&cobra.Command{
			Use:   "watch ID",
			Short: "Follow an intent until it ends (Ctrl-C stops watching, not the intent)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.followIntent(cmd.Context(), args[0])
			},
		},
		cancel, confirm, revert)
	return cmd
}

// intentStarted prints what an intent request returned: a dry run's
// plan; an intent that already ended, with its outcome; else the intent
// started, followed to its end with --wait.
func (a *app) intentStarted(ctx context.Context, in api.Intent, dryRun, wait bool) error {
	switch {
	case dryRun || in.State == api.IntentPlanned:
		return a.printPlan(in)
	case wait:
		return a.followIntent(ctx, in.ID)
	case a.structured():
		if err := a.print(in); err != nil {
			return err
		}
	case in.State.Settled():
		if err := writeSummary(a.out, in); err != nil {
			return err
		}
	default:
		writeStarted(a.out, in)
	}
	if in.State.Final() {
		return intentOutcome(in)
	}
	return nil
}

// printPlan prints a dry run: the Intent as returned with -o json.
func (a *app) printPlan(in api.Intent) error {
	if a.structured() {
		return a.print(in)
	}
	return writePlan(a.out, in)
}

// renamedFlag keeps a flag's former name working, hidden from the help
// (the caller binds it to the new one's variable); using it warns on
// stderr, stdout being the command's output for scripts.
func (a *app) renamedFlag(cmd *cobra.Command, old, now string) {
	if err := cmd.Flags().MarkHidden(old); err != nil {
		panic(err) // old names no flag: a bug in the command's definition
	}
	pre := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if cmd.Flags().Changed(old) {
			fmt.Fprintf(a.errOut, "godwit: warning: --%s is now --%s; the old name will go\n", old, now)
		}
		if pre != nil {
			return pre(cmd, args)
		}
		return nil
	}
}

// notNegative refuses negative values of the named int flags.
func notNegative(cmd *cobra.Command, names ...string) error {
	for _, n := range names {
		if v, err := cmd.Flags().GetInt(n); err == nil && v < 0 {
			return usagef("--%s must be 0 (the default) or more, not %d", n, v)
		}
	}
	return nil
}

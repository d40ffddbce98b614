package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

func (a *app) vmCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "vm", Short: "Create and manage virtual machines"}
	cmd.AddCommand(a.vmCreateCmd(), a.vmSetCmd(), a.vmConsoleCmd(), a.vmStopCmd(), a.vmLockCmd(), a.vmUnlockCmd(),
		&cobra.Command{
			Use:   "list",
			Short: "List VMs",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				vs, err := a.client().VMs(cmd.Context())
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(vs)
				}
				return writeVMs(a, vs, time.Now())
			},
		},
		&cobra.Command{
			Use:   "show VM",
			Short: "Show one VM in detail",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				v, err := a.client().VM(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printVM(v)
			},
		},
		a.vmActionCmd("start", "Start a stopped VM"),
		a.vmActionCmd("reboot", "Reset a running VM"),
		&cobra.Command{
			Use:   "delete VM",
			Short: "Stop a VM and remove it with its disk",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := a.client().DeleteVM(cmd.Context(), args[0]); err != nil {
					return err
				}
				if !a.structured() {
					fmt.Fprintf(a.out, "vm %s deleted\n", args[0])
				}
				return nil
			},
		})
	return cmd
}

func (a *app) vmCreateCmd() *cobra.Command {
	var req api.CreateVMRequest
	memory, disk := sizeFlag(256), sizeFlag(1024)
	var maxMemory sizeFlag
	var noStart bool
	var nics nicFlag
	var userData string
	cmd := &cobra.Command{
		Use:   "create NAME --image IMAGE",
		Short: "Create a VM and start it",
		Long: `Create a VM and start it (--no-start: leave it stopped).

Give the sizes with --vcpus, --memory and --disk, or name a flavor with
--flavor (godwit flavor list). Sizes are in MiB unless they say
otherwise: 256M, 1G, 1.5G, 512MiB, 2GiB. --key-name gives the guest the
public key of one of your key pairs (godwit keypair create) in its
NoCloud seed; cloud-init adds it to the default user's authorized_keys.`,
		Example: `  godwit vm create web-1 --image testguest --memory 256M --disk 1G
  godwit vm create web-3 --image testguest --flavor small --display-name "Web shop (staging)"
  godwit vm create web-4 --image testguest --flavor small --access-ipv4 203.0.113.10
  godwit vm create db-1 --image testguest --vcpus 2 --memory 1G --disk 10G --pool shared
  godwit vm create tiny --image testguest --disk 0 --cmdline "dirty_mb=32"
  godwit vm create web-2 --image testguest --network lan --network storage,ip=10.100.0.20
  godwit vm create web-5 --image debian --disk 4G --network lan --key-name laptop`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Image == "" {
				return usagef("--image is required; list images with: godwit image list")
			}
			if !slices.Contains(api.OnPanicPolicies, req.OnPanic) {
				return usagef("--on-panic must be %s, not %q", strings.Join(api.OnPanicPolicies, ", "), req.OnPanic)
			}
			req.Name = args[0]
			req.Flavor.MemoryMiB, req.Flavor.DiskMiB = int(memory), int(disk)
			if req.FlavorName != "" {
				f := cmd.Flags()
				if f.Changed("vcpus") || f.Changed("memory") || f.Changed("disk") {
					return usagef("give --flavor or the sizes (--vcpus, --memory, --disk), not both")
				}
				req.Flavor = api.Flavor{} // the flavor's sizes
			}
			req.MaxMemoryMiB = int(maxMemory)
			req.Networks = nics
			var err error
			if req.UserData, err = readUserData(userData); err != nil {
				return err
			}
			if noStart {
				req.Start = new(bool)
			}
			v, err := a.client().CreateVM(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printVM(v)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Image, "image", "", "image to boot (required; see godwit image list)")
	f.StringVar(&req.DisplayName, "display-name", "", "free-text name for people (any Unicode, at most 255 characters; not unique)")
	f.StringVar(&req.Description, "description", "", "free text about the VM (at most 255 characters)")
	f.StringVar(&req.AccessIPv4, "access-ipv4", "", "IPv4 address to reach the VM by (e.g. a NAT or floating one), recorded and shown; godwit configures it nowhere")
	f.StringVar(&req.AccessIPv6, "access-ipv6", "", "IPv6 address to reach the VM by, recorded and shown; godwit configures it nowhere")
	f.StringVar(&req.FlavorName, "flavor", "", "take the sizes of this flavor, by name or ID (instead of --vcpus, --memory and --disk)")
	f.IntVar(&req.Flavor.VCPUs, "vcpus", 1, "virtual CPUs")
	f.Var(&memory, "memory", "memory, e.g. 256M or 2G")
	f.Var(&disk, "disk", "disk size, e.g. 1G; 0 for no disk")
	f.StringVar(&req.Pool, "pool", api.PoolLocal, "storage pool of the disk: local or shared")
	f.StringVar(&req.Host, "host", "", "place on this host instead of letting the scheduler choose")
	f.StringVar(&req.Project, "project", "default", "owner project")
	f.StringVar(&req.Cmdline, "cmdline", "", "appended to the image's kernel command line")
	f.BoolVar(&noStart, "no-start", false, "create the VM stopped")
	f.StringVar(&req.OnPanic, "on-panic", api.OnPanicRestart,
		"when the guest kernel panics: restart it, pause it for inspection (state crashed), or none (its own panic= decides)")
	f.IntVar(&req.MaxVCPUs, "max-vcpus", 0, "vCPU hotplug ceiling for online resize (default: twice --vcpus, at least 4)")
	f.Var(&maxMemory, "max-memory", "memory hotplug ceiling for online resize, e.g. 1G (default: --memory, no memory hotplug)")
	f.Var(&nics, "network", "attach a NIC to this network (repeatable, in the guest's order): NET, NET,ip=A, NET,no-port-security")
	f.StringVar(&userData, "user-data", "", "cloud-init user-data file for the guest's NoCloud seed (- for stdin)")
	f.StringVar(&req.KeyName, "key-name", "", "one of your key pairs (godwit keypair list): its public key goes into the guest's NoCloud seed, for cloud-init's authorized_keys")
	return cmd
}

// vmSetCmd changes a VM's display name, description and access
// addresses: only the flags given, "" clearing one.
func (a *app) vmSetCmd() *cobra.Command {
	var displayName, description, accessIPv4, accessIPv6 string
	cmd := &cobra.Command{
		Use:   "set VM",
		Short: "Change a VM's display name, description or access addresses (only the flags given; \"\" clears one)",
		Example: `  godwit vm set web-1 --display-name "Web shop – front end"
  godwit vm set web-1 --description ""    # clear it
  godwit vm set web-1 --access-ipv4 203.0.113.10 --access-ipv6 2001:db8::10`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.UpdateVMRequest
			f := cmd.Flags()
			if f.Changed("display-name") {
				req.DisplayName = &displayName
			}
			if f.Changed("description") {
				req.Description = &description
			}
			if f.Changed("access-ipv4") {
				req.AccessIPv4 = &accessIPv4
			}
			if f.Changed("access-ipv6") {
				req.AccessIPv6 = &accessIPv6
			}
			if req.Empty() {
				return usagef("nothing to change: give --display-name, --description, --access-ipv4 or --access-ipv6")
			}
			v, err := a.client().UpdateVM(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.printVM(v)
		},
	}
	f := cmd.Flags()
	f.StringVar(&displayName, "display-name", "", "free-text name for people (any Unicode, at most 255 characters; \"\" clears it)")
	f.StringVar(&description, "description", "", "free text about the VM (at most 255 characters; \"\" clears it)")
	f.StringVar(&accessIPv4, "access-ipv4", "", "IPv4 address to reach the VM by, recorded and shown, configured nowhere (\"\" clears it)")
	f.StringVar(&accessIPv6, "access-ipv6", "", "IPv6 address to reach the VM by, recorded and shown, configured nowhere (\"\" clears it)")
	return cmd
}

func (a *app) vmActionCmd(action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " VM",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := a.client().VMAction(cmd.Context(), args[0], action, api.VMActionRequest{})
			if err != nil {
				return err
			}
			return a.printVM(v)
		},
	}
}

func (a *app) vmStopCmd() *cobra.Command {
	var force bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop VM",
		Short: "Power a VM off (ACPI power button, then forced after --timeout)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return usagef("--timeout must not be negative")
			}
			secs := int((timeout + time.Second - 1) / time.Second) // a sub-second timeout is not "none"
			v, err := a.client().VMAction(cmd.Context(), args[0], "stop",
				api.VMActionRequest{Force: force, TimeoutSeconds: secs})
			if err != nil {
				return err
			}
			return a.printVM(v)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "kill the VM at once instead of asking the guest to power off")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long the guest may take to power off before it is killed")
	return cmd
}

func (a *app) vmConsoleCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "console VM",
		Short: "Print a VM's serial console log (-f to follow it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rc, err := a.client().Console(cmd.Context(), args[0], 0, follow)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(a.out, rc)
			if follow && cmd.Context().Err() != nil {
				return nil // Ctrl-C ends a follow
			}
			if err != nil && err != context.Canceled {
				return err
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until interrupted")
	return cmd
}

func (a *app) printVM(v api.VM) error {
	if a.structured() {
		return a.print(v)
	}
	state := v.State
	if v.StateReason != "" {
		state += " (" + v.StateReason + ")"
	}
	pid := ""
	if v.PID != 0 {
		pid = fmt.Sprint(v.PID)
	}
	disk := "none"
	if v.Flavor.DiskMiB > 0 {
		disk = mib(v.Flavor.DiskMiB) + " (" + v.Pool + " pool)"
	}
	kv := []string{"Name", v.Name, "Display name", v.DisplayName, "Description", v.Description,
		"ID", v.ID, "Project", v.Project, "State", state, "Locked", lockLine(v.Lock),
		"Desired state", v.DesiredState, "Host", v.Host, "QEMU PID", pid, "Image", v.Image,
		"Flavor", v.FlavorName, "vCPUs", fmt.Sprint(v.Flavor.VCPUs), "Memory", mib(v.Flavor.MemoryMiB),
		"Disk", disk}
	kv = append(kv, portLines(v)...)
	kv = append(kv, "Key pair", v.KeyName)
	kv = append(kv, "Access IPv4", v.AccessIPv4, "Access IPv6", v.AccessIPv6)
	kv = append(kv, "Cmdline", v.Cmdline, "On panic", v.OnPanic, "Last panic", lastPanic(v.LastPanic),
		"Created", timestamp(v.CreatedAt))
	return fields(a.out, kv...)
}

// lastPanic is a VM's last guest panic in a line, e.g. "2026-11-01T12:00:05Z
// on host2: guest panicked (pvpanic) (3 panics)"; "" when it never panicked.
func lastPanic(p *api.GuestPanic) string {
	if p == nil {
		return ""
	}
	s := guestPanic(*p)
	if p.Count > 1 {
		s += fmt.Sprintf(" (%d panics)", p.Count)
	}
	return s
}

// guestPanic is when, where and why a guest panicked.
func guestPanic(p api.GuestPanic) string {
	s := timestamp(p.At)
	if p.Host != "" {
		s += " on " + p.Host
	}
	return s + ": " + p.Reason
}

func writeVMs(a *app, vs []api.VM, now time.Time) error {
	t := newTable(a.out, "NAME", "PROJECT", "STATE", "HOST", "VCPUS", "MEMORY", "DISK", "POOL", "IMAGE", "AGE")
	for _, v := range vs {
		state := v.State
		if v.Lock != nil {
			state += " (locked)"
		}
		t.row(v.Name, v.Project, state, dash(v.Host), fmt.Sprint(v.Flavor.VCPUs), mib(v.Flavor.MemoryMiB),
			mib(v.Flavor.DiskMiB), v.Pool, v.Image, age(v.CreatedAt, now))
	}
	return t.flush()
}

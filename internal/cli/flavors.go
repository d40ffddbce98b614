package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

func (a *app) flavorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "flavor", Short: "Manage flavors: named VM sizes (vm create --flavor)"}
	cmd.AddCommand(a.flavorCreateCmd(),
		&cobra.Command{
			Use:   "list",
			Short: "List flavors",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				fs, err := a.client().Flavors(cmd.Context())
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(fs)
				}
				return writeFlavors(a, fs, time.Now())
			},
		},
		&cobra.Command{
			Use:   "show FLAVOR",
			Short: "Show one flavor, by name or ID",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				f, err := a.client().Flavor(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printFlavor(f)
			},
		},
		&cobra.Command{
			Use:   "delete FLAVOR",
			Short: "Delete a flavor, by name or ID (VMs made from it keep their sizes)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := a.client().DeleteFlavor(cmd.Context(), args[0]); err != nil {
					return err
				}
				if !a.structured() {
					fmt.Fprintf(a.out, "flavor %s deleted\n", args[0])
				}
				return nil
			},
		})
	return cmd
}

func (a *app) flavorCreateCmd() *cobra.Command {
	var req api.CreateFlavorRequest
	var memory, disk sizeFlag
	cmd := &cobra.Command{
		Use:   "create NAME --vcpus N --memory SIZE --disk SIZE",
		Short: "Create a flavor: a named VM size",
		Long: `Create a flavor: a VM size with a name, as Nova keeps them. 'vm create
--flavor NAME' and 'resize --flavor NAME' take its sizes; the VM records
the flavor's name. Deleting a flavor changes no VM.

The ID is generated (a UUID) unless --id gives one. Sizes are in MiB
unless they say otherwise: 512M, 1G, 1.5G, 2GiB; --disk 0 is no disk.`,
		Example: `  godwit flavor create small --vcpus 1 --memory 512M --disk 10G
  godwit flavor create large --vcpus 4 --memory 8G --disk 80G --id 4 --description "general purpose"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var missing []string
			for _, name := range []string{"vcpus", "memory", "disk"} {
				if !cmd.Flags().Changed(name) {
					missing = append(missing, "--"+name)
				}
			}
			if len(missing) > 0 {
				return usagef("give the flavor's sizes: %s (--disk 0 for no disk)", strings.Join(missing, ", "))
			}
			req.Name = args[0]
			req.MemoryMiB, req.DiskMiB = int(memory), int(disk)
			f, err := a.client().CreateFlavor(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printFlavor(f)
		},
	}
	f := cmd.Flags()
	f.IntVar(&req.VCPUs, "vcpus", 0, "virtual CPUs (required)")
	f.Var(&memory, "memory", "memory, e.g. 512M or 2G (required)")
	f.Var(&disk, "disk", "disk size, e.g. 10G; 0 for no disk (required)")
	f.StringVar(&req.ID, "id", "", "the flavor's ID (default: a generated UUID)")
	f.StringVar(&req.Description, "description", "", "free text for people")
	return cmd
}

func (a *app) printFlavor(f api.NamedFlavor) error {
	if a.structured() {
		return a.print(f)
	}
	return fields(a.out, "Name", f.Name, "ID", f.ID, "vCPUs", fmt.Sprint(f.VCPUs), "Memory", mib(f.MemoryMiB),
		"Disk", flavorDisk(f.DiskMiB), "Description", f.Description, "Created", timestamp(f.CreatedAt))
}

func writeFlavors(a *app, fs []api.NamedFlavor, now time.Time) error {
	t := newTable(a.out, "NAME", "ID", "VCPUS", "MEMORY", "DISK", "AGE")
	for _, f := range fs {
		t.row(f.Name, f.ID, fmt.Sprint(f.VCPUs), mib(f.MemoryMiB), flavorDisk(f.DiskMiB), age(f.CreatedAt, now))
	}
	return t.flush()
}

// flavorDisk is a flavor's disk size, "none" for no disk.
func flavorDisk(n int) string {
	if n == 0 {
		return "none"
	}
	return mib(n)
}

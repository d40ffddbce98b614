package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/testguest"
)

func (a *app) imageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage the controller's images"}
	cmd.AddCommand(a.imageImportCmd(), a.imageBuildCmd(),
		&cobra.Command{
			Use:   "list",
			Short: "List images",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ims, err := a.client().Images(cmd.Context())
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(ims)
				}
				return writeImages(a, ims, time.Now())
			},
		},
		&cobra.Command{
			Use:   "show IMAGE",
			Short: "Show one image",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				im, err := a.client().Image(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printImage(im)
			},
		},
		&cobra.Command{
			Use:   "delete IMAGE",
			Short: "Delete an image no VM uses",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := a.client().DeleteImage(cmd.Context(), args[0]); err != nil {
					return err
				}
				if !a.structured() {
					fmt.Fprintf(a.out, "image %s deleted\n", args[0])
				}
				return nil
			},
		})
	return cmd
}

func writeImages(a *app, ims []api.Image, now time.Time) error {
	t := newTable(a.out, "NAME", "KIND", "FILES", "AGE")
	for _, im := range ims {
		t.row(im.Name, im.Kind, imageFiles(im), age(im.CreatedAt, now))
	}
	return t.flush()
}

// imageFiles lists an image's files with their sizes, rounded up to MiB.
func imageFiles(im api.Image) string {
	var fs []string
	for _, f := range im.Files {
		fs = append(fs, fmt.Sprintf("%s %s", f.Role, mib(int((f.Size+1<<20-1)>>20))))
	}
	return strings.Join(fs, ", ")
}

func (a *app) printImage(im api.Image) error {
	if a.structured() {
		return a.print(im)
	}
	kv := []string{"Name", im.Name, "Kind", im.Kind, "Cmdline", im.Cmdline, "Created", timestamp(im.CreatedAt)}
	for _, f := range im.Files {
		kv = append(kv, "File "+f.Role, fmt.Sprintf("%d bytes, sha256 %s", f.Size, f.SHA256))
	}
	return fields(a.out, kv...)
}

func (a *app) imageImportCmd() *cobra.Command {
	var meta api.ImportImageMeta
	var kernel, initrd, disk string
	cmd := &cobra.Command{
		Use:   "import NAME [--kernel F --initrd F --cmdline S] [--disk F.qcow2]",
		Short: "Upload a kernel (+initrd), a qcow2 disk, or both, as an image",
		Example: `  godwit image import debian --disk debian-12.qcow2
  godwit image import mykernel --kernel vmlinuz --initrd initrd.img --cmdline "console=ttyS0"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			meta.Name = args[0]
			files := map[string]string{}
			for role, p := range map[string]string{api.RoleKernel: kernel, api.RoleInitrd: initrd, api.RoleDisk: disk} {
				if p != "" {
					files[role] = p
				}
			}
			if initrd != "" && kernel == "" {
				return usagef("--initrd needs --kernel")
			}
			if len(files) == 0 {
				return usageError{fmt.Errorf("give --kernel (with an optional --initrd), --disk, or both")}
			}
			im, err := a.client().ImportImage(cmd.Context(), meta, files)
			if err != nil {
				return err
			}
			return a.printImage(im)
		},
	}
	cmd.Flags().StringVar(&kernel, "kernel", "", "kernel (bzImage) for direct boot")
	cmd.Flags().StringVar(&initrd, "initrd", "", "initramfs for direct boot")
	cmd.Flags().StringVar(&meta.Cmdline, "cmdline", "", "kernel command line")
	cmd.Flags().StringVar(&disk, "disk", "", "qcow2 root disk")
	return cmd
}

// defaultTestguestName is what build-testguest --import imports as.
const defaultTestguestName = "testguest"

func (a *app) imageBuildCmd() *cobra.Command {
	opts := testguest.Options{OutDir: filepath.Join(godwitHome(), "testguest")}
	var importName string
	cmd := &cobra.Command{
		Use:   "build-testguest [--out DIR] [--import [NAME]]",
		Short: "Build the test guest (Debian's kernel + a busybox initramfs) and optionally import it",
		Long: `Build the test guest: Debian's kernel with a small initramfs holding busybox and
godwit-guest, which prints a heartbeat on the serial console and dirties memory
at a rate set on the kernel command line. With --import, also import it into
the controller (as "testguest" unless a name follows).`,
		Example: `  godwit image build-testguest --import
  godwit image build-testguest --out /tmp/guest --import tg2`,
		// --import takes its name as an optional value; "--import NAME"
		// with a space leaves NAME as an argument, which is taken here.
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if importName != defaultTestguestName || !cmd.Flags().Changed("import") {
					return usagef("unexpected argument %q; to import under a name, use --import NAME", args[0])
				}
				importName = args[0]
			}
			f := cmd.Flags()
			if !f.Changed("kernel") && !f.Changed("busybox") && !f.Changed("modules-dir") {
				if why := testguest.Missing(); why != "" {
					return errors.New(why)
				}
			}
			if opts.GuestBinary == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find the godwit binary: %w", err)
				}
				opts.GuestBinary = filepath.Join(filepath.Dir(exe), "godwit-guest")
			}
			if _, err := os.Stat(opts.GuestBinary); err != nil {
				return fmt.Errorf("godwit-guest not found at %s; build it with make build, or pass --guest-bin", opts.GuestBinary)
			}
			g, err := testguest.Build(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("build the test guest: %w", err)
			}
			if !a.structured() {
				fmt.Fprintf(a.out, "test guest built: kernel %s, initrd %s\n", g.Kernel, g.Initrd)
			}
			if importName == "" {
				if a.structured() {
					return a.print(g)
				}
				return nil
			}
			im, err := a.client().ImportImage(cmd.Context(), api.ImportImageMeta{Name: importName, Cmdline: g.Cmdline},
				map[string]string{api.RoleKernel: g.Kernel, api.RoleInitrd: g.Initrd})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(im)
			}
			fmt.Fprintf(a.out, "imported as image %s; boot it with: godwit vm create NAME --image %s\n", im.Name, im.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.OutDir, "out", opts.OutDir, "directory to write the kernel and initrd to")
	f.StringVar(&opts.GuestBinary, "guest-bin", "", "the godwit-guest binary (default: next to godwit)")
	f.StringVar(&opts.Kernel, "kernel", "", "kernel to use (default: the newest /boot/vmlinuz-*)")
	f.StringVar(&opts.ModulesDir, "modules-dir", "", "the kernel's modules (default: /lib/modules/<its version>)")
	f.StringVar(&opts.Busybox, "busybox", "", "static busybox (default: /bin/busybox)")
	f.StringVar(&importName, "import", "", "also import it into the controller, as \"testguest\" or the name given")
	f.Lookup("import").NoOptDefVal = defaultTestguestName
	return cmd
}

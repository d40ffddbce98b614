package cli

import (
	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

func (a *app) vmLockCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "lock VM",
		Short: "Lock a VM: members' changes to it (delete, stop, resize...) are refused until it is unlocked; admins are not stopped",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := a.client().LockVM(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			return a.printVM(v)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the VM is locked, shown to whoever is refused")
	return cmd
}

func (a *app) vmUnlockCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unlock VM",
		Short: "Unlock a locked VM (a lock an admin made, only an admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := a.client().UnlockVM(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printVM(v)
		},
	}
}

// lockLine is a VM's lock in a line, e.g. "by alice at
// 2026-11-01T12:00:05Z (maintenance)"; "" when it is not locked.
func lockLine(l *api.VMLock) string {
	if l == nil {
		return ""
	}
	s := "by " + l.ByName
	if l.ByAdmin {
		s += " (admin)"
	}
	s += " at " + timestamp(l.At)
	if l.Reason != "" {
		s += " (" + l.Reason + ")"
	}
	return s
}

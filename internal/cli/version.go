package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/version"
)

// versionInfo is what godwit version -o json prints.
type versionInfo struct {
	Version    string       `json:"version"`
	Server     string       `json:"server"`
	Controller *api.Version `json:"controller,omitempty"` // absent when unreachable
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print godwit's version, and the controller's when it answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := versionInfo{Version: version.Version, Server: a.server}
			// Short: the version must print even with no controller around.
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
			defer cancel()
			if v, err := a.client().Version(ctx); err == nil {
				info.Controller = &v
			}
			if a.structured() {
				return a.print(info)
			}
			fmt.Fprintln(a.out, "godwit", info.Version)
			if info.Controller != nil {
				fmt.Fprintf(a.out, "controller %s at %s (%s store)\n", info.Controller.Version, info.Server, info.Controller.Store)
			} else {
				fmt.Fprintf(a.out, "controller: no answer at %s\n", info.Server)
			}
			return nil
		},
	}
}

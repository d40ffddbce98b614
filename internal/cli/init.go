package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/pki"
)

// initCmd makes a cluster's CA and the controller's certificate.
func (a *app) initCmd() *cobra.Command {
	var dir, cluster, name string
	var addrs []string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a cluster's CA and the controller's certificate (for serve --tls-dir)",
		Long: `Create a cluster: its certificate authority and the controller's certificate,
in --tls-dir (the CA's key stays there, mode 0600). Then:

  godwit serve --tls-dir DIR --listen ADDR:7400      the API over HTTPS
  godwit host add NAME                                a join token for each host
  godwit agent --name NAME --join TOKEN ...           on that host

Users trust the controller with --ca DIR/ca.crt (or GODWIT_CA).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				h, err := os.Hostname()
				if err != nil {
					return usagef("no --name given and no hostname: %v", err)
				}
				name = h
			}
			auth, err := pki.Init(dir, cluster, name, append([]string{"127.0.0.1", "::1", "localhost"}, addrs...))
			if err != nil {
				return err
			}
			fp := pki.Fingerprint(auth.Identity().CA)
			if a.json() {
				return printJSON(a.out, map[string]string{"tls_dir": dir, "ca": filepath.Join(dir, pki.CACertFile), "ca_fingerprint": fp})
			}
			fmt.Fprintf(a.out, "cluster %q: CA %s in %s\n", cluster, fp, dir)
			fmt.Fprintf(a.out, "next: godwit serve --tls-dir %s --listen ADDR:7400; godwit host add NAME for each host\n", dir)
			fmt.Fprintf(a.out, "users: --ca %s --server https://ADDR:7400\n", filepath.Join(dir, pki.CACertFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "tls-dir", "/etc/godwit/pki", "where the CA and the controller's certificate go")
	f.StringVar(&cluster, "cluster", "godwit", "the cluster's name, in its CA's")
	f.StringVar(&name, "name", "", "the controller's name in its certificate (default: the hostname)")
	f.StringSliceVar(&addrs, "address", nil, "addresses (IPs or DNS names) users reach the controller at, besides loopback (repeatable)")
	return cmd
}

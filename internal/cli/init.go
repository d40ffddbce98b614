package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/pki"
)

// initCmd makes a cluster's CA and the controller's certificate.
func (a *app) initCmd() *cobra.Command {
	var dir, cluster, name string
	var renew bool
	var addrs []string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a cluster's CA, the controller's certificate and the first admin token",
		Long: `Create a cluster: its certificate authority and the controller's certificate,
in --tls-dir (the CA's key stays there, mode 0600), and the first admin token,
written once to your config file (~/.config/godwit/config.json or
$GODWIT_CONFIG, mode 0600) with the server's URL and the CA. Then:

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
			if renew {
				ca, err := pki.OpenAuthority(dir)
				if err != nil {
					return err
				}
				if err := ca.RenewController(name, append([]string{"127.0.0.1", "::1", "localhost"}, addrs...)); err != nil {
					return err
				}
				fmt.Fprintf(a.out, "controller %s has a new key and certificate in %s; restart godwit serve to use it (agents and users need no change)\n", name, dir)
				return nil
			}
			// The admin token goes to the user's config file, written
			// once: one that exists (another cluster's token) is kept.
			cfgPath := userConfigPath()
			if _, err := os.Stat(cfgPath); err == nil {
				return fmt.Errorf("a config file exists at %s: move it away, or set GODWIT_CONFIG to a new path for this cluster's", cfgPath)
			}
			ca, err := pki.Init(dir, cluster, name, append([]string{"127.0.0.1", "::1", "localhost"}, addrs...))
			if err != nil {
				return err
			}
			token, err := auth.WriteBootstrap(dir)
			if err != nil {
				return err
			}
			server := "https://127.0.0.1:7400"
			if len(addrs) > 0 {
				server = "https://" + net.JoinHostPort(addrs[0], "7400")
			}
			caFile := filepath.Join(dir, pki.CACertFile)
			if cfgPath, err = saveUserConfig(userConfig{Server: server, CA: caFile, Token: token}); err != nil {
				return fmt.Errorf("write the admin token to the config file: %w", err)
			}
			fp := pki.Fingerprint(ca.Identity().CA)
			if a.structured() {
				return a.print(map[string]string{"tls_dir": dir, "ca": caFile, "ca_fingerprint": fp, "config": cfgPath})
			}
			fmt.Fprintf(a.out, "cluster %q: CA %s in %s\n", cluster, fp, dir)
			fmt.Fprintf(a.out, "admin token, server and CA written to %s (mode 0600)\n", cfgPath)
			fmt.Fprintf(a.out, "next: godwit serve --tls-dir %s --listen ADDR:7400; godwit host add NAME for each host\n", dir)
			fmt.Fprintf(a.out, "users: godwit token create NAME --project P gives each a token; they use --ca %s --server %s\n", caFile, server)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "tls-dir", "/etc/godwit/pki", "where the CA and the controller's certificate go")
	f.StringVar(&cluster, "cluster", "godwit", "the cluster's name, in its CA's")
	f.StringVar(&name, "name", "", "the controller's name in its certificate (default: the hostname)")
	f.BoolVar(&renew, "renew-controller", false, "give the controller of the existing cluster in --tls-dir a new key and certificate (new --address, or before the old one ends)")
	f.StringSliceVar(&addrs, "address", nil, "addresses (IPs or DNS names) users reach the controller at, besides loopback (repeatable)")
	return cmd
}

package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/cluster"
)

// userConfig is the user's config file: which controller, which CA and
// which token the CLI uses when no flag or environment variable says.
// godwit init writes it (mode 0600: it holds a token).
type userConfig struct {
	Server string `json:"server,omitempty"`
	CA     string `json:"ca,omitempty"`
	Token  string `json:"token,omitempty"`
}

// userConfigPath is $GODWIT_CONFIG, or $XDG_CONFIG_HOME/godwit/config.json
// (~/.config/godwit/config.json).
func userConfigPath() string {
	if p := os.Getenv("GODWIT_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "godwit", "config.json")
}

// loadUserConfig reads the user's config file; none is an empty one.
func loadUserConfig() (userConfig, error) {
	var c userConfig
	p := userConfigPath()
	if p == "" {
		return c, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", p, err)
	}
	return c, nil
}

// saveUserConfig writes c to the user's config file, mode 0600.
func saveUserConfig(c userConfig) (string, error) {
	p := userConfigPath()
	if p == "" {
		return "", errors.New("no config directory: set GODWIT_CONFIG or HOME")
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// defaultToken is GODWIT_TOKEN, else the config file's, else the admin
// token of godwit up's cluster in its default directory.
func defaultToken(cfg userConfig) string {
	if t := os.Getenv("GODWIT_TOKEN"); t != "" {
		return t
	}
	if cfg.Token != "" {
		return cfg.Token
	}
	if b, err := os.ReadFile(cluster.TokenFile(defaultClusterDir())); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

// tokenCmd makes, lists and revokes API tokens (admins).
func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Make, list and revoke API tokens (admins)"}
	var project, role string
	var hours int
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a token for a project and role; its secret is shown this once",
		Example: "  godwit token create alice --project web --role member\n" +
			"  godwit token create ci --project web --expires-in 720h",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.client().CreateToken(cmd.Context(), api.CreateTokenRequest{Name: args[0], Project: project, Role: api.Role(role), ExpiresInHours: hours})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(t)
			}
			fmt.Fprintf(a.out, "token %s (%s): %s of project %s\n%s\n", t.ID, t.Name, t.Role, t.Project, t.Secret)
			fmt.Fprintln(a.errOut, "keep it: it is not shown again (give it with GODWIT_TOKEN or --token)")
			return nil
		},
	}
	var expires time.Duration
	create.Flags().StringVar(&project, "project", "default", "the project it acts in")
	create.Flags().StringVar(&role, "role", string(api.RoleMember), "member (its project's VMs) or admin (everything)")
	create.Flags().DurationVar(&expires, "expires-in", 0, "how long it is good for, in hours (e.g. 720h); 0: until revoked")
	create.PreRunE = func(*cobra.Command, []string) error {
		if expires < 0 || expires%time.Hour != 0 {
			return usagef("--expires-in must be whole hours, e.g. 720h, not %s", expires)
		}
		hours = int(expires / time.Hour)
		return nil
	}
	cmd.AddCommand(create, &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets), revoked ones too",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := a.client().Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(ts)
			}
			now := time.Now()
			t := newTable(a.out, "ID", "NAME", "PROJECT", "ROLE", "AGE", "STATE")
			for _, tk := range ts {
				state := "valid"
				switch {
				case !tk.RevokedAt.IsZero():
					state = "revoked " + age(tk.RevokedAt, now) + " ago"
				case !tk.ExpiresAt.IsZero() && now.After(tk.ExpiresAt):
					state = "expired"
				case !tk.ExpiresAt.IsZero():
					state = "expires " + tk.ExpiresAt.Format(time.DateOnly)
				}
				t.row(tk.ID, tk.Name, tk.Project, string(tk.Role), age(tk.CreatedAt, now), state)
			}
			return t.flush()
		},
	}, &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: every request with it is refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.client().RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(t)
			}
			fmt.Fprintf(a.out, "token %s (%s) revoked\n", t.ID, t.Name)
			return nil
		},
	})
	return cmd
}

// projectCmd shows projects' quotas and usage, and sets quotas.
func (a *app) projectCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Show projects' quotas and usage; set quotas (admins)"}
	var q api.Quota
	quota := &cobra.Command{
		Use:     "quota PROJECT",
		Short:   "Set a project's quota: all four limits (0: none)",
		Example: "  godwit project quota web --vms 10 --vcpus 20 --memory-mib 32768 --disk-mib 512000",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.client().SetQuota(cmd.Context(), args[0], q)
			if err != nil {
				return err
			}
			return a.writeProjects(p)
		},
	}
	quota.Flags().IntVar(&q.VMs, "vms", 0, "VMs, whatever their state")
	quota.Flags().IntVar(&q.VCPUs, "vcpus", 0, "vCPUs of all its VMs")
	quota.Flags().IntVar(&q.MemoryMiB, "memory-mib", 0, "memory of all its VMs, MiB")
	quota.Flags().IntVar(&q.DiskMiB, "disk-mib", 0, "disk of all its VMs, MiB")
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List projects (those with a quota or VMs) with their usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := a.client().Projects(cmd.Context())
			if err != nil {
				return err
			}
			return a.writeProjects(ps...)
		},
	}, &cobra.Command{
		Use:   "show PROJECT",
		Short: "Show a project's quota and usage (members: their own)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.client().Project(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.writeProjects(p)
		},
	}, quota)
	return cmd
}

func (a *app) writeProjects(ps ...api.Project) error {
	if a.structured() {
		if len(ps) == 1 {
			return a.print(ps[0])
		}
		return a.print(ps)
	}
	of := func(used, limit int) string {
		if limit == 0 {
			return strconv.Itoa(used)
		}
		return fmt.Sprintf("%d/%d", used, limit)
	}
	t := newTable(a.out, "PROJECT", "VMS", "VCPUS", "MEMORY MIB", "DISK MIB")
	for _, p := range ps {
		t.row(p.Name, of(p.Usage.VMs, p.Quota.VMs), of(p.Usage.VCPUs, p.Quota.VCPUs),
			of(p.Usage.MemoryMiB, p.Quota.MemoryMiB), of(p.Usage.DiskMiB, p.Quota.DiskMiB))
	}
	return t.flush()
}

// whoamiCmd says who the CLI's token makes it.
func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the token makes you: role and project",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.client().Whoami(cmd.Context())
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(p)
			}
			fmt.Fprintln(a.out, p.String())
			return nil
		},
	}
}

// auditCmd lists the audit log (admins).
func (a *app) auditCmd() *cobra.Command {
	var since time.Duration
	var limit int
	var vmID string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List the audit log: every request that changed something, newest first (admins)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := api.AuditFilter{Limit: limit, VMID: vmID}
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			rs, err := a.client().Audit(cmd.Context(), f)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(rs)
			}
			t := newTable(a.out, "TIME", "WHO", "REQUEST", "STATUS", "ERROR")
			for _, r := range rs {
				t.row(r.Time.Local().Format(time.DateTime), r.Who, r.Method+" "+r.Path, strconv.Itoa(r.Status), r.Error)
			}
			return t.flush()
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "only the last this long, e.g. 1h")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many records")
	cmd.Flags().StringVar(&vmID, "vm-id", "", "only the requests that acted on the VM of this ID (a deleted VM's too)")
	return cmd
}

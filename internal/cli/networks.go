package cli

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

func (a *app) networkCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage the networks VMs attach to"}
	cmd.AddCommand(a.networkCreateCmd(),
		&cobra.Command{
			Use:   "list",
			Short: "List networks",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ns, err := a.client().Networks(cmd.Context())
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(ns)
				}
				return writeNetworks(a, ns, time.Now())
			},
		},
		&cobra.Command{
			Use:   "show NETWORK",
			Short: "Show one network",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				n, err := a.client().Network(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printNetwork(n)
			},
		},
		&cobra.Command{
			Use:   "delete NETWORK",
			Short: "Delete a network no VM uses",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := a.client().DeleteNetwork(cmd.Context(), args[0]); err != nil {
					return err
				}
				if !a.structured() {
					fmt.Fprintf(a.out, "network %s deleted\n", args[0])
				}
				return nil
			},
		})
	return cmd
}

func (a *app) networkCreateCmd() *cobra.Command {
	var req api.CreateNetworkRequest
	cmd := &cobra.Command{
		Use:   "create NAME --subnet CIDR",
		Short: "Create a network",
		Long: `Create an IPv4 network. Each host attaches the network's VMs to a Linux
bridge of its own (named in 'network show'); an agent started with
--uplink NAME=IFACE puts IFACE on that bridge, so the network spans hosts.
Addresses are handed out from the subnet, the gateway excluded.`,
		Example: `  godwit network create lan --subnet 10.99.0.0/24
  godwit network create storage --subnet 10.100.0.0/24 --gateway 10.100.0.254 --mtu 9000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Subnet == "" {
				return usagef("--subnet is required, e.g. --subnet 10.99.0.0/24")
			}
			req.Name = args[0]
			n, err := a.client().CreateNetwork(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printNetwork(n)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Subnet, "subnet", "", "IPv4 subnet in CIDR form (required)")
	f.StringVar(&req.Gateway, "gateway", "", "the subnet's router (default: its first address)")
	f.IntVar(&req.MTU, "mtu", 0, fmt.Sprintf("MTU of the network (default %d)", api.DefaultMTU))
	return cmd
}

func (a *app) printNetwork(n api.Network) error {
	if a.structured() {
		return a.print(n)
	}
	return fields(a.out, "Name", n.Name, "Type", string(n.Type), "Subnet", n.Subnet, "Gateway", n.Gateway,
		"MTU", fmt.Sprint(n.MTU), "Bridge", n.Bridge, "Ports", fmt.Sprint(n.Ports), "Created", timestamp(n.CreatedAt))
}

func writeNetworks(a *app, ns []api.Network, now time.Time) error {
	t := newTable(a.out, "NAME", "SUBNET", "GATEWAY", "MTU", "BRIDGE", "PORTS", "AGE")
	for _, n := range ns {
		t.row(n.Name, n.Subnet, n.Gateway, fmt.Sprint(n.MTU), n.Bridge, fmt.Sprint(n.Ports), age(n.CreatedAt, now))
	}
	return t.flush()
}

// nicFlag is vm create's repeatable --network NET[,ip=A][,no-port-security].
type nicFlag []api.NICRequest

func (f *nicFlag) String() string {
	s := make([]string, len(*f))
	for i, r := range *f {
		s[i] = r.String()
	}
	return strings.Join(s, " ")
}

func (f *nicFlag) Type() string { return "NET[,ip=A]" }

func (f *nicFlag) Set(v string) error {
	parts := strings.Split(v, ",")
	r := api.NICRequest{Network: parts[0]}
	if r.Network == "" {
		return fmt.Errorf("name a network: --network NET[,ip=A][,no-port-security]")
	}
	for _, p := range parts[1:] {
		switch k, val, _ := strings.Cut(p, "="); k {
		case "ip":
			if ip := net.ParseIP(val); ip == nil || ip.To4() == nil {
				return fmt.Errorf("ip=%q is not an IPv4 address", val)
			}
			r.IP = val
		case "no-port-security":
			r.NoPortSecurity = true
		default:
			return fmt.Errorf("unknown --network option %q: use ip=A or no-port-security", p)
		}
	}
	*f = append(*f, r)
	return nil
}

// readUserData reads --user-data FILE ("-" for stdin).
func readUserData(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, api.MaxUserDataBytes+1))
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			b, err = io.ReadAll(io.LimitReader(f, api.MaxUserDataBytes+1))
			f.Close()
		}
	}
	if err != nil {
		return "", fmt.Errorf("read user-data: %w", err)
	}
	if len(b) > api.MaxUserDataBytes {
		return "", usagef("--user-data %s is larger than %d bytes", path, api.MaxUserDataBytes)
	}
	return string(b), nil
}

// portLines are a VM's ports for vm show, one per NIC in guest order.
func portLines(v api.VM) []string {
	var kv []string
	for i, p := range v.Ports {
		sec := ""
		if !p.PortSecurity {
			sec = ", no port security"
		}
		kv = append(kv, fmt.Sprintf("NIC eth%d", i), fmt.Sprintf("%s on %s, mac %s%s", p.IP, p.Network, p.MAC, sec))
	}
	return kv
}

package hostnet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// tablePrefix names a port's nftables table: bridge family, one table
// per tap, so that plugging and unplugging a port is one atomic nft
// transaction that touches nothing else (other ports, the operator's
// own rules). Dashes are not allowed in nft identifiers without quotes;
// tap names may hold them, so they are mapped to underscores.
const tablePrefix = "godwit_ps_"

func table(tap string) string {
	return tablePrefix + strings.NewReplacer("-", "_", ".", "_").Replace(tap)
}

// secure installs (or replaces) p's port-security table. Its base chains
// see every frame the tap sends, whether bridged on (forward) or for the
// host itself (input), and drop those whose Ethernet source is not the
// port's MAC, ARP claiming another MAC or address, IPv4 from another
// address, and every other ethertype but RARP (IPv6 among them: networks
// are IPv4, and allowing it unchecked would let the VM spoof there; VLAN
// tags would let it hop). ARP probes with a zero sender (duplicate
// address detection) pass, and so does RARP from the port's MAC: it is
// how QEMU announces a NIC that arrived on this host, so that the
// network sends its frames here.
func secure(ctx context.Context, p Port) error {
	t := table(p.Tap)
	script := fmt.Sprintf(`table bridge %[1]s
delete table bridge %[1]s
table bridge %[1]s {
	chain port {
		ether saddr != %[3]s drop
		ether type != { ip, arp, 0x8035 } drop
		arp saddr ether != %[3]s drop
		arp saddr ip != { %[4]s, 0.0.0.0 } drop
		ip saddr != %[4]s drop
	}
	chain forward {
		type filter hook forward priority -10; policy accept;
		iifname %[2]q jump port
	}
	chain input {
		type filter hook input priority -10; policy accept;
		iifname %[2]q jump port
	}
}
`, t, p.Tap, strings.ToLower(p.MAC), p.IP)
	_, err := runInput(ctx, []byte(script), "nft", "-f", "-")
	return err
}

// unsecure removes a tap's port-security table, if any: one nft command,
// its "no such table" no error.
func unsecure(ctx context.Context, tap string) error {
	if Check(true) != nil {
		return nil // no nft: no tables
	}
	_, err := run(ctx, "nft", "delete", "table", "bridge", table(tap))
	if err != nil && strings.Contains(err.Error(), "No such file or directory") {
		return nil
	}
	return err
}

// securedTaps lists the taps that have a port-security table, by the
// tables' names (underscores where the tap had dashes or dots, which the
// callers' prefixes never hold). No nft, no tables.
func securedTaps(ctx context.Context) ([]string, error) {
	if Check(true) != nil {
		return nil, nil
	}
	out, err := run(ctx, "nft", "-j", "list", "tables", "bridge")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Nftables []struct {
			Table *struct {
				Name string `json:"name"`
			} `json:"table"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("parse nft -j list tables: %w", err)
	}
	var taps []string
	for _, e := range doc.Nftables {
		if e.Table != nil && strings.HasPrefix(e.Table.Name, tablePrefix) {
			taps = append(taps, strings.TrimPrefix(e.Table.Name, tablePrefix))
		}
	}
	return taps, nil
}

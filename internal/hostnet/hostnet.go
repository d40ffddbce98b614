// Package hostnet plugs VM NICs into a host's networks: one Linux bridge
// per network, the host's uplink for it as a bridge port, one persistent
// tap per NIC, and per-NIC port-security rules in nftables' bridge
// family. It is the host side of the driver level; the qemu driver calls
// it before it starts QEMU and after a VM leaves the host.
//
// It runs iproute2's ip and nftables' nft rather than speaking netlink
// itself: both are in every Debian install an operator debugs with, the
// commands it runs are the ones a human would type, and it keeps godwit
// free of a netlink dependency. Every operation is idempotent, so a plug
// repeated after an agent crash converges, and taps are persistent, so a
// VM's tap outlives both the agent and a QEMU restart.
package hostnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"

	"github.com/godwit/godwit/internal/safe"
)

// Port is one VM NIC as the host plugs it.
type Port struct {
	Tap    string // the tap's name, at most 15 characters
	Bridge string // the network's bridge on this host
	// Uplink is the host interface the bridge reaches the network's other
	// hosts through (agent --uplink NET=IFACE); empty: none (a network
	// local to the host, or one whose bridge already has its uplink).
	Uplink string
	MTU    int
	MAC    string
	IP     string // the port's address, without prefix
	// Security drops whatever the VM sends from another MAC or IP, ARP
	// included, and anything but IPv4 and ARP.
	Security bool
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$`)

// Valid checks the names and addresses of p before anything runs with
// them.
func (p Port) Valid() error {
	for _, n := range []string{p.Tap, p.Bridge} {
		if !nameRE.MatchString(n) {
			return fmt.Errorf("bad interface name %q: use 1 to 15 letters, digits, '-', '_' or '.'", n)
		}
	}
	if p.Uplink != "" && !nameRE.MatchString(p.Uplink) {
		return fmt.Errorf("bad uplink name %q", p.Uplink)
	}
	if _, err := net.ParseMAC(p.MAC); err != nil {
		return fmt.Errorf("bad mac %q: %w", p.MAC, err)
	}
	if ip := net.ParseIP(p.IP); ip == nil || ip.To4() == nil {
		return fmt.Errorf("bad ipv4 address %q", p.IP)
	}
	if p.MTU < 576 || p.MTU > 65535 {
		return fmt.Errorf("bad mtu %d", p.MTU)
	}
	return nil
}

// Check says whether this host can plug ports: iproute2 and /dev/net/tun,
// and nft when security is asked for. Its errors say what to install.
func Check(security bool) error {
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("plugging a vm nic needs iproute2's ip: apt-get install iproute2")
	}
	if security {
		if _, err := exec.LookPath("nft"); err != nil {
			return errors.New("port security needs nftables' nft: apt-get install nftables (or create the port with no port security)")
		}
	}
	return nil
}

// Plug makes p's bridge, uplink, tap and rules what p says. It is
// idempotent; a tap that exists is reused (QEMU holds it open across an
// agent restart). It runs on a live migration's critical path, so it
// reads every link once and changes what differs in one ip batch, then
// writes the rules in one nft transaction: three commands, about 60 ms.
func Plug(ctx context.Context, p Port) error {
	if err := p.Valid(); err != nil {
		return err
	}
	if err := Check(p.Security); err != nil {
		return err
	}
	links, err := allLinks(ctx)
	if err != nil {
		return err
	}
	var batch []string
	mtu := fmt.Sprint(p.MTU)
	if br, ok := links[p.Bridge]; !ok {
		// Two agents of one machine (godwit up) may race to make it:
		// the batch runs with -force, and a bridge made by the other
		// one is as good.
		batch = append(batch, "link add name "+p.Bridge+" type bridge", "link set dev "+p.Bridge+" mtu "+mtu+" up")
	} else if !br.up() || br.MTU != p.MTU {
		batch = append(batch, "link set dev "+p.Bridge+" mtu "+mtu+" up")
	}
	if p.Uplink != "" {
		up, ok := links[p.Uplink]
		if !ok {
			return fmt.Errorf("uplink %s does not exist on this host: fix the agent's --uplink", p.Uplink)
		}
		if up.Master != p.Bridge || up.MTU != p.MTU || !up.up() {
			batch = append(batch, "link set dev "+p.Uplink+" mtu "+mtu+" master "+p.Bridge+" up")
		}
	}
	tap, ok := links[p.Tap]
	if !ok {
		batch = append(batch, "tuntap add dev "+p.Tap+" mode tap vnet_hdr")
	}
	if !ok || tap.Master != p.Bridge || tap.MTU != p.MTU || !tap.up() {
		batch = append(batch, "link set dev "+p.Tap+" mtu "+mtu+" master "+p.Bridge+" up")
	}
	if len(batch) > 0 {
		if _, err := runInput(ctx, []byte(strings.Join(batch, "\n")+"\n"), "ip", "-force", "-batch", "-"); err != nil {
			// -force carries on past a failed line; what matters is
			// whether the links are now as asked.
			if verr := verify(ctx, p); verr != nil {
				return fmt.Errorf("%w (%v)", err, verr)
			}
		}
	}
	if p.Security {
		return secure(ctx, p)
	}
	return unsecure(ctx, p.Tap)
}

// verify checks that p's bridge and tap are there, up, and the tap on
// the bridge.
func verify(ctx context.Context, p Port) error {
	links, err := allLinks(ctx)
	if err != nil {
		return err
	}
	if br, ok := links[p.Bridge]; !ok || !br.up() {
		return fmt.Errorf("bridge %s is not up", p.Bridge)
	}
	if tap, ok := links[p.Tap]; !ok || tap.Master != p.Bridge || !tap.up() {
		return fmt.Errorf("tap %s is not up on %s", p.Tap, p.Bridge)
	}
	return nil
}

// Unplug removes a tap and its rules; a tap already gone is no error.
// The bridge stays: other VMs of the network may use it. The rules and
// the tap go at once (a live migration's source waits for this).
func Unplug(ctx context.Context, tap string) error {
	if !nameRE.MatchString(tap) {
		return fmt.Errorf("bad interface name %q", tap)
	}
	rules := make(chan error, 1)
	safe.Go(nil, "port security removal", func() {
		err := errors.New("removing the port security rules panicked; see the log")
		defer func() { rules <- err }() // even after a panic: Unplug waits for it
		err = unsecure(ctx, tap)
	})
	_, err := run(ctx, "ip", "link", "del", "dev", tap)
	if err != nil && (strings.Contains(err.Error(), "Cannot find device") || strings.Contains(err.Error(), "does not exist")) {
		err = nil
	}
	if rerr := <-rules; rerr != nil {
		return rerr
	}
	return err
}

// Taps lists the taps whose names start with prefix, and the port
// security tables of taps with that prefix (whose tap may be gone), so
// that an agent finds what it plugged and no VM of its owns any more.
func Taps(ctx context.Context, prefix string) ([]string, error) {
	out, err := run(ctx, "ip", "-j", "link", "show", "type", "tun")
	if err != nil {
		return nil, err
	}
	var links []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("parse ip -j link: %w", err)
	}
	seen := map[string]bool{}
	var taps []string
	add := func(n string) {
		if strings.HasPrefix(n, prefix) && !seen[n] {
			seen[n] = true
			taps = append(taps, n)
		}
	}
	for _, l := range links {
		add(l.Name)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		tables, err := securedTaps(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range tables {
			add(t)
		}
	}
	return taps, nil
}

// Bridge makes sure a bridge exists and is up, and gives it addr (CIDR)
// when set: `godwit up` makes the local cluster's network this way, with
// the gateway on the machine.
func Bridge(ctx context.Context, name string, mtu int, addr string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("bad bridge name %q", name)
	}
	if err := ensureBridge(ctx, name, mtu); err != nil {
		return err
	}
	if addr == "" {
		return nil
	}
	return ip(ctx, "addr", "replace", addr, "dev", name)
}

// DeleteBridge removes a bridge; one already gone is no error.
func DeleteBridge(ctx context.Context, name string) error {
	l, err := link(ctx, name)
	if err != nil || l == nil {
		return err
	}
	return ip(ctx, "link", "del", "dev", name)
}

type linkInfo struct {
	Name   string   `json:"ifname"`
	MTU    int      `json:"mtu"`
	Master string   `json:"master"`
	Flags  []string `json:"flags"`
}

func (l linkInfo) up() bool { return slices.Contains(l.Flags, "UP") }

// allLinks reads every link of this namespace, by name.
func allLinks(ctx context.Context) (map[string]linkInfo, error) {
	out, err := run(ctx, "ip", "-j", "link", "show")
	if err != nil {
		return nil, err
	}
	var ls []linkInfo
	if err := json.Unmarshal(out, &ls); err != nil {
		return nil, fmt.Errorf("parse ip -j link show: %w", err)
	}
	m := make(map[string]linkInfo, len(ls))
	for _, l := range ls {
		m[l.Name] = l
	}
	return m, nil
}

// link reads one interface; nil when there is none.
func link(ctx context.Context, name string) (*linkInfo, error) {
	out, err := run(ctx, "ip", "-j", "link", "show", "dev", name)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil, nil
		}
		return nil, err
	}
	var ls []linkInfo
	if err := json.Unmarshal(out, &ls); err != nil || len(ls) != 1 {
		return nil, fmt.Errorf("parse ip -j link show %s: %v", name, err)
	}
	return &ls[0], nil
}

func ensureBridge(ctx context.Context, name string, mtu int) error {
	l, err := link(ctx, name)
	if err != nil {
		return err
	}
	if l == nil {
		// Two agents of one machine (godwit up) may race to make it.
		if err := ip(ctx, "link", "add", "name", name, "type", "bridge"); err != nil && !strings.Contains(err.Error(), "File exists") {
			return err
		}
	}
	return ip(ctx, "link", "set", "dev", name, "mtu", fmt.Sprint(mtu), "up")
}

func ip(ctx context.Context, args ...string) error {
	_, err := run(ctx, "ip", args...)
	return err
}

func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return runInput(ctx, nil, name, args...)
}

func runInput(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}

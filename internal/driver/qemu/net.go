package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/hostnet"
)

// tapPrefix starts every tap the qemu driver makes. A tap's name is the
// prefix, 8 hex digits of its port's ID and 4 of this driver's state
// directory: 14 characters, inside Linux's 15. The last part keeps apart
// the taps of agents that share a machine (godwit up), where a live
// move's source and destination taps of one port coexist for a moment.
const tapPrefix = "gw"

// tapSalt is the per-agent part of tap names.
func tapSalt(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte("taps:" + abs))
	return hex.EncodeToString(sum[:2])
}

// tap is the name of this host's tap of the NIC on port.
func (d *Driver) tap(port string) string { return tapName(port, d.tapSalt) }

func tapName(port, salt string) string {
	id := strings.ReplaceAll(port, "-", "")
	if len(id) > 8 {
		id = id[:8]
	}
	return tapPrefix + id + salt
}

// plug makes the host side of every NIC of spec (bridge, uplink, tap,
// port-security rules) before QEMU opens the taps. Idempotent: a restart
// of the VM, or of the agent, reuses what is there.
func (d *Driver) plug(ctx context.Context, spec driver.VMSpec) error {
	for _, n := range spec.NICs {
		p := hostnet.Port{Tap: d.tap(n.Port), Bridge: n.Bridge, Uplink: n.Uplink, MTU: n.MTU, MAC: n.MAC, IP: n.IP, Security: n.PortSecurity}
		if err := hostnet.Plug(ctx, p); err != nil {
			return fmt.Errorf("vm %s: plug nic %s: %w", spec.ID, n.MAC, err)
		}
	}
	return nil
}

// unplug removes the taps and rules of spec's NICs: the VM has left this
// host (deleted, or moved away), so its MACs are live elsewhere or
// nowhere, never here too.
func (d *Driver) unplug(ctx context.Context, spec driver.VMSpec) error {
	var first error
	for _, n := range spec.NICs {
		if err := hostnet.Unplug(ctx, d.tap(n.Port)); err != nil && first == nil {
			first = fmt.Errorf("vm %s: unplug nic %s: %w", spec.ID, n.MAC, err)
		}
	}
	return first
}

// unplugOrphans removes this driver's taps (and their rules) that no VM
// it knows owns: left by a VM removed while the agent was down, or by an
// agent killed between making a tap and recording the VM.
func (d *Driver) unplugOrphans(ctx context.Context) {
	if hostnet.Check(false) != nil {
		return
	}
	taps, err := hostnet.Taps(ctx, tapPrefix)
	if err != nil {
		d.log.Warn("list taps", "err", err)
		return
	}
	owned := map[string]bool{}
	for _, v := range d.all() {
		v.mu.Lock()
		for _, n := range v.st.Launch.Spec.NICs {
			owned[d.tap(n.Port)] = true
		}
		v.mu.Unlock()
	}
	for _, t := range taps {
		if len(t) != len(tapPrefix)+8+4 || !strings.HasSuffix(t, d.tapSalt) || owned[t] {
			continue
		}
		if err := hostnet.Unplug(ctx, t); err != nil {
			d.log.Warn("remove orphan tap", "tap", t, "err", err)
			continue
		}
		d.log.Info("removed orphan tap", "tap", t)
	}
}

// vhostNet says whether the kernel's vhost-net is here to move packets
// without a trip through QEMU's main loop. Not guest-visible: the two
// ends of a migration may differ.
func vhostNet() bool {
	_, err := os.Stat("/dev/vhost-net")
	return err == nil
}

// announceParams is how QEMU announces a VM's NICs (a RARP per MAC, and
// a gratuitous ARP from guests that take part, VIRTIO_NET_F_GUEST_ANNOUNCE)
// so that the bridges and switches between the VM and its clients move
// its MACs to this host's port at once, instead of sending its traffic
// to the port it had until their entries age out (five minutes on a
// Linux bridge): the first round 5 ms after, then at 105, 205, 305 and
// 405 ms, for frames lost while a link relearns. A migration's
// destination reads them from its migration parameters (prefix
// "announce-") and announces after the switch-over; a VM booted on a
// host (created, cold-moved, rebuilt) is announced by announce-self.
func announceParams(prefix string) map[string]int {
	return map[string]int{prefix + "initial": 5, prefix + "max": 405, prefix + "rounds": 5, prefix + "step": 100}
}

// announce announces v's NICs from this host (v.mu held): it booted
// here, and the network may still send its MACs to the host it left.
func (d *Driver) announce(ctx context.Context, v *vm) {
	if len(v.st.Launch.Spec.NICs) == 0 {
		return
	}
	if err := d.qmpRun(ctx, v, "announce-self", announceParams(""), nil); err != nil {
		d.log.Warn("announce the nics", "vm", v.st.Launch.Spec.Name, "err", err)
	}
}

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godwit/godwit/internal/seed"
)

// The NoCloud seed: an ISO 9660 image labelled cidata on a virtio disk
// (internal/seed builds it). Its primary volume descriptor is at byte
// 32768 (sector 16 of 2048 bytes); the volume identifier at byte 40 of it.
const (
	pvdOffset  = 32768
	seedMount  = "/run/seed"
	busyboxBin = "/bin/busybox"
)

// blockDevices lists the virtio disks, /dev/vda first.
func blockDevices() []string {
	devs, _ := filepath.Glob("/dev/vd[a-z]")
	more, _ := filepath.Glob("/dev/vd[a-z][a-z]")
	sort.Strings(devs)
	sort.Strings(more)
	return append(devs, more...)
}

// isSeed reports whether the device holds an ISO 9660 volume labelled
// cidata.
func isSeed(dev string) bool {
	f, err := os.Open(dev)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 72)
	if _, err := f.ReadAt(b, pvdOffset); err != nil {
		return false
	}
	return isSeedPVD(b)
}

func isSeedPVD(b []byte) bool {
	return len(b) >= 72 && b[0] == 1 && string(b[1:6]) == "CD001" &&
		strings.TrimRight(string(b[40:72]), " \x00") == seed.Label
}

// findSeed returns the first disk that is a seed, or "".
func findSeed(devs []string) string {
	for _, d := range devs {
		if isSeed(d) {
			return d
		}
	}
	return ""
}

// seedFiles is what the guest read from its seed.
type seedFiles struct {
	meta    seed.MetaData
	network seed.Network
	sums    string // "meta-data=<sha256/16> network-config=... user-data=..."
}

// readSeed mounts the seed read-only through the kernel's isofs (which
// shows its Joliet names), reads its files and unmounts it again.
func readSeed(dev string) (seedFiles, error) {
	if err := os.MkdirAll(seedMount, 0o755); err != nil {
		return seedFiles{}, err
	}
	if err := syscall.Mount(dev, seedMount, "iso9660", syscall.MS_RDONLY, ""); err != nil {
		return seedFiles{}, fmt.Errorf("mount %s: %w", dev, err)
	}
	defer syscall.Unmount(seedMount, 0)
	ents, err := os.ReadDir(seedMount)
	if err != nil {
		return seedFiles{}, err
	}
	var s seedFiles
	var sums []string
	files := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(seedMount, e.Name()))
		if err != nil {
			return seedFiles{}, err
		}
		files[e.Name()] = b
		sum := sha256.Sum256(b)
		sums = append(sums, e.Name()+"="+hex.EncodeToString(sum[:8]))
	}
	sort.Strings(sums)
	s.sums = strings.Join(sums, " ")
	if s.meta, err = seed.ParseMetaData(files[seed.MetaDataFile]); err != nil {
		return s, err
	}
	if b, ok := files[seed.NetworkConfigFile]; ok {
		if s.network, err = seed.ParseNetworkConfig(b); err != nil {
			return s, err
		}
	}
	return s, nil
}

// nic is an interface the seed configured.
type nic struct {
	name  string
	index int
	mac   net.HardwareAddr
	addr  netip.Prefix
}

// configureNetwork applies the seed's network-config with busybox ip:
// each ethernet entry's interface, found by MAC, is renamed to its
// set-name and gets its MTU, address, link up and routes. It returns the
// entries in order (eth0 first), one without an address where that
// failed; log gets a line for each step that failed.
func configureNetwork(n seed.Network, log io.Writer) []nic {
	ipCmd(log, "link", "set", "dev", "lo", "up")
	names := make([]string, 0, len(n.Ethernets))
	for name := range n.Ethernets {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return lessIfName(names[i], names[j]) })

	// Find each entry's interface by MAC; a NIC may take a moment to
	// show up after its driver loaded.
	current := map[string]string{} // entry name -> interface name now
	deadline := time.Now().Add(3 * time.Second)
	for {
		byMAC := interfacesByMAC()
		for _, name := range names {
			if ifc, ok := byMAC[strings.ToLower(n.Ethernets[name].Match.MACAddress)]; ok {
				current[name] = ifc
			}
		}
		if len(current) == len(names) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Rename in two steps so that a swap (eth0 <-> eth1) works.
	for i, name := range names {
		want := n.Ethernets[name].SetName
		if ifc, ok := current[name]; ok && want != "" && ifc != want {
			tmp := "seedtmp" + strconv.Itoa(i)
			if ipCmd(log, "link", "set", "dev", ifc, "name", tmp) {
				current[name] = tmp
			}
		}
	}
	var out []nic
	for _, name := range names {
		e := n.Ethernets[name]
		ifc, ok := current[name]
		if !ok {
			fmt.Fprintf(log, "godwit-guest seed: no interface has mac %s (%s)\n", e.Match.MACAddress, name)
			out = append(out, nic{name: name}) // keeps eth0 first
			continue
		}
		if e.SetName != "" && ifc != e.SetName && ipCmd(log, "link", "set", "dev", ifc, "name", e.SetName) {
			ifc = e.SetName
		}
		if e.MTU > 0 {
			ipCmd(log, "link", "set", "dev", ifc, "mtu", strconv.Itoa(e.MTU))
		}
		var addr netip.Prefix
		for _, a := range e.Addresses {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				fmt.Fprintf(log, "godwit-guest seed: %s: address %q: %v\n", name, a, err)
				continue
			}
			if ipCmd(log, "addr", "add", p.String(), "dev", ifc) && !addr.IsValid() {
				addr = p
			}
		}
		ipCmd(log, "link", "set", "dev", ifc, "up")
		for _, r := range e.Routes {
			ipCmd(log, "route", "add", r.To, "via", r.Via, "dev", ifc)
		}
		mac, _ := net.ParseMAC(e.Match.MACAddress)
		idx := 0
		if i, err := net.InterfaceByName(ifc); err == nil {
			idx = i.Index
		}
		out = append(out, nic{name: ifc, index: idx, mac: mac, addr: addr})
	}
	return out
}

// lessIfName orders eth2 before eth10.
func lessIfName(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// interfacesByMAC maps each interface's MAC (lower case) to its name.
func interfacesByMAC() map[string]string {
	m := map[string]string{}
	paths, _ := filepath.Glob("/sys/class/net/*/address")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		m[strings.ToLower(strings.TrimSpace(string(b)))] = filepath.Base(filepath.Dir(p))
	}
	return m
}

// ipCmd runs busybox ip with args, logging a failure.
func ipCmd(log io.Writer, args ...string) bool {
	cmd := exec.Command(busyboxBin, append([]string{"ip"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(log, "godwit-guest seed: ip %s: %v: %s\n", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
		return false
	}
	return true
}

// setupFromSeed reads the seed on dev (if any), sets the hostname and
// configures the network. It returns the interfaces configured.
func setupFromSeed(dev string, log io.Writer) []nic {
	if dev == "" {
		fmt.Fprintln(log, "godwit-guest seed: none (no cidata disk)")
		ipCmd(log, "link", "set", "dev", "lo", "up")
		return nil
	}
	begin := time.Now()
	s, err := readSeed(dev)
	fmt.Fprintf(log, "godwit-guest seed: %s %s\n", dev, s.sums)
	if err != nil {
		fmt.Fprintf(log, "godwit-guest seed: %v\n", err)
		ipCmd(log, "link", "set", "dev", "lo", "up")
		return nil
	}
	if h := s.meta.LocalHostname; h != "" {
		if err := syscall.Sethostname([]byte(h)); err != nil {
			fmt.Fprintf(log, "godwit-guest seed: hostname %s: %v\n", h, err)
		}
	}
	if h, err := os.Hostname(); err == nil {
		fmt.Fprintf(log, "godwit-guest seed: instance-id=%s hostname=%s\n", s.meta.InstanceID, h)
	}
	nics := configureNetwork(s.network, log)
	for _, n := range nics {
		fmt.Fprintf(log, "godwit-guest seed: %s mac=%s addr=%s\n", n.name, n.mac, n.addr)
	}
	fmt.Fprintf(log, "godwit-guest seed: read and applied in %d ms\n", time.Since(begin).Milliseconds())
	return nics
}

// heartbeatIP is the heartbeat's ip field: the first NIC's address, or
// none.
func heartbeatIP(nics []nic) string {
	if len(nics) == 0 || !nics[0].addr.IsValid() {
		return "none"
	}
	return nics[0].addr.Addr().String()
}

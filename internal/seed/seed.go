// Package seed builds a VM's cloud-init NoCloud seed: a small ISO 9660
// image with the volume label "cidata" holding meta-data (instance-id,
// local-hostname and the SSH public-keys cloud-init puts in the default
// user's authorized_keys), user-data (as the user gave it) and network-config
// (version 2: a static address for each NIC, matched by its MAC). The
// controller attaches it to the VM as a read-only disk, and the guest
// learns its network the way users' images do.
//
// The image is built in Go, byte for byte, with fixed timestamps: the same
// Config always gives the same image, so the destination of a live
// migration, which builds the seed again, shows the guest an identical
// device.
//
// ISO 9660's own file names are upper case d-characters in 8.3 form
// (META_DAT.;1), and cloud-init looks for "meta-data", "user-data" and
// "network-config". The image carries those names in a Joliet tree (a
// supplementary volume descriptor whose directory records hold UCS-2
// names) beside the plain ISO 9660 one; both trees point at the same file
// data. Joliet rather than Rock Ridge: it is a second, self-contained
// directory tree, where Rock Ridge needs System Use Sharing Protocol
// entries (SP, ER, NM and, for a usable mode, PX) in every directory
// record and continuation areas when they overflow; Linux's isofs reads
// Joliet by default (utf8 names, no extra module), and so do Windows,
// the BSDs and libblkid, and it is what cloud-localds's genisoimage
// -joliet writes as well.
package seed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// Label is the volume label cloud-init's NoCloud looks for.
const Label = "cidata"

// NIC is one network interface of the VM, in the order of its devices.
type NIC struct {
	MAC     string // "02:ab:cd:ef:01:02"
	Address string // CIDR, "10.99.0.5/24"
	Gateway string // "10.99.0.1", may be empty
	MTU     int    // 0: leave default
}

// Config is what the seed tells the guest.
type Config struct {
	InstanceID string // the VM's UUID
	Hostname   string // the VM's name
	NICs       []NIC  // in order: eth0, eth1, ...
	UserData   []byte // cloud-init user-data as given; empty: write "#cloud-config\n"
	// PublicKeys are SSH public keys, one line each ("ssh-ed25519 AAAA…
	// comment"): meta-data's public-keys, which cloud-init's NoCloud
	// reads as a list of keys and adds to the default user's
	// authorized_keys.
	PublicKeys []string
}

// The names of the seed's files.
const (
	MetaDataFile      = "meta-data"
	UserDataFile      = "user-data"
	NetworkConfigFile = "network-config"
)

// Network is the network-config document (cloud-init's network config
// version 2, netplan's format), written as JSON, which is valid YAML.
type Network struct {
	Version   int                 `json:"version"`
	Ethernets map[string]Ethernet `json:"ethernets"`
}

// Ethernet is one interface of a Network.
type Ethernet struct {
	Match     Match    `json:"match"`
	SetName   string   `json:"set-name,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	Routes    []Route  `json:"routes,omitempty"`
	MTU       int      `json:"mtu,omitempty"`
}

// Match picks the interface an Ethernet entry configures.
type Match struct {
	MACAddress string `json:"macaddress"`
}

// Route is a static route; To is "default" for the default route.
type Route struct {
	To  string `json:"to"`
	Via string `json:"via"`
}

// MetaData is what the meta-data document says.
type MetaData struct {
	InstanceID    string
	LocalHostname string
	PublicKeys    []string
}

// Build returns the seed: an ISO 9660 image with volume label "cidata"
// holding meta-data, user-data and network-config at its root.
// Deterministic: the same Config gives the same bytes.
func Build(c Config) ([]byte, error) {
	files, err := Files(c)
	if err != nil {
		return nil, err
	}
	return buildISO(Label, []isoFile{
		{plain: "META_DAT.;1", joliet: MetaDataFile, data: files[MetaDataFile]},
		{plain: "USER_DAT.;1", joliet: UserDataFile, data: files[UserDataFile]},
		{plain: "NETWORK_.;1", joliet: NetworkConfigFile, data: files[NetworkConfigFile]},
	})
}

// Files returns the documents the seed holds, by file name: what a
// guest reads from the mounted seed, byte for byte.
func Files(c Config) (map[string][]byte, error) {
	meta, err := metaData(c)
	if err != nil {
		return nil, err
	}
	netcfg, err := NetworkConfig(c)
	if err != nil {
		return nil, err
	}
	user := c.UserData
	if len(user) == 0 {
		user = []byte("#cloud-config\n")
	}
	return map[string][]byte{MetaDataFile: meta, UserDataFile: user, NetworkConfigFile: netcfg}, nil
}

// WriteFile builds the seed and writes it to path atomically (a
// temporary file in the same directory, then a rename), mode 0600.
func WriteFile(path string, c Config) error {
	b, err := Build(c)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write seed: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write seed %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write seed %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write seed %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write seed %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write seed: %w", err)
	}
	return nil
}

// NetworkConfig returns the network-config document: version 2, one
// ethernet entry per NIC (eth0, eth1, ... in order), matched by MAC and
// renamed to that name, with its static address, a default route when
// the NIC has a gateway and its MTU when set. Keys come in a fixed order.
func NetworkConfig(c Config) ([]byte, error) {
	n := Network{Version: 2, Ethernets: map[string]Ethernet{}}
	seen := map[string]int{}
	for i, nic := range c.NICs {
		name := fmt.Sprintf("eth%d", i)
		mac, err := net.ParseMAC(nic.MAC)
		if err != nil || len(mac) != 6 {
			return nil, fmt.Errorf("nic %d: mac %q is not an Ethernet address like 02:ab:cd:ef:01:02", i, nic.MAC)
		}
		if j, dup := seen[mac.String()]; dup {
			return nil, fmt.Errorf("nic %d: mac %s is also nic %d's", i, mac, j)
		}
		seen[mac.String()] = i
		addr, err := netip.ParsePrefix(nic.Address)
		if err != nil {
			return nil, fmt.Errorf("nic %d: address %q is not in CIDR form like 10.99.0.5/24", i, nic.Address)
		}
		e := Ethernet{
			Match:     Match{MACAddress: mac.String()},
			SetName:   name,
			Addresses: []string{addr.String()},
			MTU:       nic.MTU,
		}
		if nic.Gateway != "" {
			gw, err := netip.ParseAddr(nic.Gateway)
			if err != nil || gw.Is4() != addr.Addr().Is4() || gw.Zone() != "" {
				return nil, fmt.Errorf("nic %d: gateway %q is not an address of the same family as %s", i, nic.Gateway, addr)
			}
			e.Routes = []Route{{To: "default", Via: gw.String()}}
		}
		if nic.MTU != 0 && (nic.MTU < 68 || nic.MTU > 65535) {
			return nil, fmt.Errorf("nic %d: mtu %d is out of range (68-65535, or 0 for the default)", i, nic.MTU)
		}
		n.Ethernets[name] = e
	}
	return marshal(n)
}

// ParseNetworkConfig parses a network-config document as NetworkConfig
// writes it (JSON).
func ParseNetworkConfig(b []byte) (Network, error) {
	var n Network
	if err := json.Unmarshal(b, &n); err != nil {
		return Network{}, fmt.Errorf("parse network-config: %w", err)
	}
	if n.Version != 2 {
		return Network{}, fmt.Errorf("parse network-config: version %d, want 2", n.Version)
	}
	return n, nil
}

// metaData is the meta-data document: YAML, each value a double-quoted
// string (JSON's quoting, which YAML reads the same), so that no value
// is taken for a number, a boolean or null.
func metaData(c Config) ([]byte, error) {
	if c.InstanceID == "" {
		return nil, fmt.Errorf("seed: instance id is required")
	}
	if strings.ContainsFunc(c.InstanceID, isControl) {
		return nil, fmt.Errorf("seed: instance id %q holds a control character", c.InstanceID)
	}
	if c.Hostname != "" && !validHostname(c.Hostname) {
		return nil, fmt.Errorf("seed: hostname %q is not a host name (letters, digits and '-' in dot-separated labels)", c.Hostname)
	}
	for i, k := range c.PublicKeys {
		if strings.TrimSpace(k) == "" || strings.ContainsFunc(k, isControl) {
			return nil, fmt.Errorf("seed: public key %d is empty or holds a control character: give one key a line", i)
		}
	}
	var b bytes.Buffer
	b.WriteString("instance-id: ")
	b.Write(mustQuote(c.InstanceID))
	b.WriteString("\n")
	if c.Hostname != "" {
		b.WriteString("local-hostname: ")
		b.Write(mustQuote(c.Hostname))
		b.WriteString("\n")
	}
	if len(c.PublicKeys) > 0 {
		// A flow sequence of double-quoted strings, on one line: JSON,
		// which YAML reads the same.
		keys, err := marshal(c.PublicKeys)
		if err != nil {
			return nil, err
		}
		b.WriteString("public-keys: ")
		b.Write(keys)
	}
	return b.Bytes(), nil
}

// ParseMetaData reads a meta-data document as Build writes it: lines of
// key: value, each value plain or double-quoted, public-keys a JSON list.
func ParseMetaData(b []byte) (MetaData, error) {
	var m MetaData
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return MetaData{}, fmt.Errorf("parse meta-data: line %q is not key: value", line)
		}
		v = strings.TrimSpace(v)
		if strings.TrimSpace(k) == "public-keys" {
			if err := json.Unmarshal([]byte(v), &m.PublicKeys); err != nil {
				return MetaData{}, fmt.Errorf("parse meta-data: public-keys: %w", err)
			}
			continue
		}
		if strings.HasPrefix(v, `"`) {
			if err := json.Unmarshal([]byte(v), &v); err != nil {
				return MetaData{}, fmt.Errorf("parse meta-data: %s: %w", k, err)
			}
		}
		switch strings.TrimSpace(k) {
		case "instance-id":
			m.InstanceID = v
		case "local-hostname":
			m.LocalHostname = v
		}
	}
	return m, nil
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// marshal is json.Marshal without HTML escaping, with a final newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func mustQuote(s string) []byte {
	b, err := marshal(s)
	if err != nil {
		panic(err) // a string always encodes
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

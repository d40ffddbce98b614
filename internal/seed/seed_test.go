package seed

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testConfig() Config {
	return Config{
		InstanceID: "0b5e2d4c-7f3a-4c1e-9d2b-6a8f0e1c3b57",
		Hostname:   "web-1",
		NICs: []NIC{
			{MAC: "02:AB:cd:ef:01:02", Address: "10.99.0.5/24", Gateway: "10.99.0.1", MTU: 1500},
			{MAC: "02:ab:cd:ef:01:03", Address: "10.98.0.7/16"},
		},
		UserData: []byte("#cloud-config\nruncmd:\n - [touch, /tmp/hello]\n"),
	}
}

func TestNetworkConfig(t *testing.T) {
	got, err := NetworkConfig(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":2,"ethernets":{` +
		`"eth0":{"match":{"macaddress":"02:ab:cd:ef:01:02"},"set-name":"eth0","addresses":["10.99.0.5/24"],"routes":[{"to":"default","via":"10.99.0.1"}],"mtu":1500},` +
		`"eth1":{"match":{"macaddress":"02:ab:cd:ef:01:03"},"set-name":"eth1","addresses":["10.98.0.7/16"]}}}` + "\n"
	if string(got) != want {
		t.Errorf("network-config:\n%s\nwant:\n%s", got, want)
	}
	n, err := ParseNetworkConfig(got)
	if err != nil {
		t.Fatal(err)
	}
	if e := n.Ethernets["eth0"]; e.Match.MACAddress != "02:ab:cd:ef:01:02" || e.MTU != 1500 || e.Routes[0].Via != "10.99.0.1" {
		t.Errorf("parsed back eth0 = %+v", e)
	}

	none, err := NetworkConfig(Config{InstanceID: "x"})
	if err != nil || string(none) != `{"version":2,"ethernets":{}}`+"\n" {
		t.Errorf("no NICs: %q, %v", none, err)
	}
	if _, err := ParseNetworkConfig([]byte(`{"version":1}`)); err == nil {
		t.Error("version 1 parsed")
	}
}

func TestMetaData(t *testing.T) {
	c := testConfig()
	b, err := metaData(c)
	if err != nil {
		t.Fatal(err)
	}
	want := "instance-id: \"0b5e2d4c-7f3a-4c1e-9d2b-6a8f0e1c3b57\"\nlocal-hostname: \"web-1\"\n"
	if string(b) != want {
		t.Errorf("meta-data %q; want %q", b, want)
	}
	m, err := ParseMetaData(b)
	if err != nil || m.InstanceID != c.InstanceID || m.LocalHostname != c.Hostname {
		t.Errorf("ParseMetaData = %+v, %v", m, err)
	}
	// An instance id that YAML would take for something else stays a string.
	b, _ = metaData(Config{InstanceID: `1e3 "quoted" <x>`})
	if m, err := ParseMetaData(b); err != nil || m.InstanceID != `1e3 "quoted" <x>` || m.LocalHostname != "" {
		t.Errorf("meta-data %q parsed to %+v, %v", b, m, err)
	}
	if m, err := ParseMetaData([]byte("instance-id: plain\nlocal-hostname: h\n")); err != nil || m.InstanceID != "plain" || m.LocalHostname != "h" {
		t.Errorf("plain values: %+v, %v", m, err)
	}
}

// SSH keys go into meta-data as public-keys, a list of one-line keys
// (cloud-init's NoCloud reads a list, a string of lines or a map of
// lists; a list it takes as is), and the guest reads them from the
// image.
func TestMetaDataPublicKeys(t *testing.T) {
	c := testConfig()
	c.PublicKeys = []string{
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ alice@example",
		`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ "quoted" <laptop> #1: yes`,
	}
	b, err := metaData(c)
	if err != nil {
		t.Fatal(err)
	}
	want := "instance-id: \"0b5e2d4c-7f3a-4c1e-9d2b-6a8f0e1c3b57\"\nlocal-hostname: \"web-1\"\n" +
		`public-keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ alice@example",` +
		`"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ \"quoted\" <laptop> #1: yes"]` + "\n"
	if string(b) != want {
		t.Errorf("meta-data:\n%s\nwant:\n%s", b, want)
	}
	m, err := ParseMetaData(b)
	if err != nil || m.InstanceID != c.InstanceID || strings.Join(m.PublicKeys, "|") != strings.Join(c.PublicKeys, "|") {
		t.Errorf("ParseMetaData = %+v, %v", m, err)
	}
	img, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := readJoliet(t, img)[MetaDataFile]; string(got) != want {
		t.Errorf("the image's meta-data:\n%s", got)
	}
	// No keys: no public-keys line.
	if b, _ := metaData(testConfig()); strings.Contains(string(b), "public-keys") {
		t.Errorf("meta-data without keys: %q", b)
	}
}

func TestBuildRejectsBadConfigs(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no instance id", func(c *Config) { c.InstanceID = "" }, "instance id is required"},
		{"control character", func(c *Config) { c.InstanceID = "a\nb" }, "control character"},
		{"bad hostname", func(c *Config) { c.Hostname = "web_1" }, "not a host name"},
		{"bad mac", func(c *Config) { c.NICs[0].MAC = "02:ab:cd" }, "not an Ethernet address"},
		{"long mac", func(c *Config) { c.NICs[0].MAC = "02:00:5e:10:00:00:00:01" }, "not an Ethernet address"},
		{"duplicate mac", func(c *Config) { c.NICs[1].MAC = "02:ab:cd:ef:01:02" }, "also nic 0's"},
		{"bare address", func(c *Config) { c.NICs[0].Address = "10.99.0.5" }, "CIDR"},
		{"bad gateway", func(c *Config) { c.NICs[0].Gateway = "10.99.0" }, "gateway"},
		{"gateway of another family", func(c *Config) { c.NICs[0].Gateway = "fe80::1" }, "same family"},
		{"mtu", func(c *Config) { c.NICs[0].MTU = 20 }, "mtu 20"},
		{"two lines in a key", func(c *Config) { c.PublicKeys = []string{"ssh-ed25519 AAAA a\nssh-rsa AAAA b"} }, "public key 0"},
		{"empty key", func(c *Config) { c.PublicKeys = []string{" "} }, "public key 0"},
	} {
		c := testConfig()
		c.NICs = append([]NIC(nil), c.NICs...)
		tt.edit(&c)
		if _, err := Build(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Build error %v; want one saying %q", tt.name, err, tt.want)
		}
	}
}

// The same Config gives the same bytes (a migration's destination
// rebuilds the seed); any difference in the Config shows in the image.
func TestBuildIsDeterministic(t *testing.T) {
	a, err := Build(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same Config differ")
	}
	if len(a)%sectorSize != 0 {
		t.Errorf("image is %d bytes, not whole sectors", len(a))
	}
	for _, tt := range []struct {
		name string
		edit func(*Config)
	}{
		{"instance id", func(c *Config) { c.InstanceID = "another" }},
		{"hostname", func(c *Config) { c.Hostname = "web-2" }},
		{"mac", func(c *Config) { c.NICs[0].MAC = "02:ab:cd:ef:01:04" }},
		{"address", func(c *Config) { c.NICs[0].Address = "10.99.0.6/24" }},
		{"gateway", func(c *Config) { c.NICs[0].Gateway = "" }},
		{"mtu", func(c *Config) { c.NICs[0].MTU = 9000 }},
		{"nic order", func(c *Config) { c.NICs[0], c.NICs[1] = c.NICs[1], c.NICs[0] }},
		{"user-data", func(c *Config) { c.UserData = []byte("#cloud-config\n") }},
		{"public keys", func(c *Config) { c.PublicKeys = []string{"ssh-ed25519 AAAA k"} }},
	} {
		c := testConfig()
		c.NICs = append([]NIC(nil), c.NICs...)
		tt.edit(&c)
		other, err := Build(c)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if bytes.Equal(a, other) {
			t.Errorf("changing the %s left the image as it was", tt.name)
		}
	}
}

func TestEmptyUserDataIsCloudConfig(t *testing.T) {
	c := testConfig()
	c.UserData = nil
	img, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	files := readJoliet(t, img)
	if got := string(files[UserDataFile]); got != "#cloud-config\n" {
		t.Errorf("user-data %q; want \"#cloud-config\\n\"", got)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.iso")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, testConfig()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Build(testConfig())
	if !bytes.Equal(got, want) {
		t.Error("the file differs from Build's image")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v; want 0600 (a seed holds the guest's user-data)", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries; want the seed alone (no temporary file left)", len(ents))
	}
	if err := WriteFile(path, Config{}); err == nil {
		t.Error("WriteFile of an invalid Config succeeded")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, want) {
		t.Error("a failed WriteFile changed the existing seed")
	}
	if err := WriteFile(filepath.Join(dir, "missing", "seed.iso"), testConfig()); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

// The network-config document is plain JSON a YAML reader also takes:
// no tabs, no HTML escapes.
func TestNetworkConfigIsPlainJSON(t *testing.T) {
	b, _ := NetworkConfig(testConfig())
	if !json.Valid(b) || bytes.ContainsAny(b, "\t\\") {
		t.Errorf("network-config %q", b)
	}
}

package hostnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// needRoot skips unless this test may make interfaces and rules here.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("hostnet: making bridges, taps and nftables rules needs root")
	}
	if err := Check(true); err != nil {
		t.Skipf("hostnet: %v", err)
	}
}

func suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestPlugUnplug(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s := suffix()
	p := Port{Tap: "gwtt" + s, Bridge: "gwtb" + s, MTU: 1400, MAC: "02:00:00:aa:bb:cc", IP: "10.250.0.5", Security: true}
	t.Cleanup(func() {
		_ = Unplug(ctx, p.Tap)
		_ = DeleteBridge(ctx, p.Bridge)
	})
	for range 2 { // idempotent
		if err := Plug(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	l, err := link(ctx, p.Tap)
	if err != nil || l == nil {
		t.Fatalf("tap %s: %v %v", p.Tap, l, err)
	}
	if l.Master != p.Bridge || l.MTU != 1400 {
		t.Errorf("tap in %q with mtu %d; want %s and 1400", l.Master, l.MTU, p.Bridge)
	}
	rules, err := exec.Command("nft", "list", "table", "bridge", table(p.Tap)).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, rules)
	}
	for _, want := range []string{"02:00:00:aa:bb:cc", "10.250.0.5", `iifname "` + p.Tap + `"`} {
		if !strings.Contains(string(rules), want) {
			t.Errorf("rules lack %q:\n%s", want, rules)
		}
	}
	taps, err := Taps(ctx, "gwtt"+s)
	if err != nil || !slices.Equal(taps, []string{p.Tap}) {
		t.Errorf("Taps = %v, %v; want [%s]", taps, err, p.Tap)
	}

	// Turning security off removes the table and keeps the tap.
	p.Security = false
	if err := Plug(ctx, p); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nft", "list", "table", "bridge", table(p.Tap)).CombinedOutput(); err == nil {
		t.Errorf("table still there without security:\n%s", out)
	}

	p.Security = true
	if err := Plug(ctx, p); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := Unplug(ctx, p.Tap); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := link(ctx, p.Tap); l != nil {
		t.Error("tap still there after unplug")
	}
	if taps, _ := Taps(ctx, "gwtt"+s); len(taps) != 0 {
		t.Errorf("after unplug Taps = %v", taps)
	}
}

func TestPortValid(t *testing.T) {
	good := Port{Tap: "gw12345678abcd", Bridge: "gw-net", MTU: 1500, MAC: "02:00:00:00:00:01", IP: "10.0.0.2"}
	if err := good.Valid(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Port){
		"long tap":   func(p *Port) { p.Tap = "gw12345678abcdef" },
		"shell":      func(p *Port) { p.Bridge = "br;rm -rf" },
		"bad mac":    func(p *Port) { p.MAC = "zz" },
		"ipv6":       func(p *Port) { p.IP = "fe80::1" },
		"tiny mtu":   func(p *Port) { p.MTU = 100 },
		"bad uplink": func(p *Port) { p.Uplink = "-x" },
	} {
		p := good
		mut(&p)
		if p.Valid() == nil {
			t.Errorf("%s: accepted %+v", name, p)
		}
	}
}

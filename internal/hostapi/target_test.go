package hostapi

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/errs"
)

// Only tcp:HOST:PORT with an IP literal and a real port reaches QEMU:
// exec: would run a shell, file: and unix: write guest memory anywhere,
// a name would be resolved on the source, options would reach QEMU.
func TestParseMigrationURI(t *testing.T) {
	for _, tt := range []struct {
		uri string
		ok  bool
	}{
		{"tcp:127.0.0.1:4444", true},
		{"tcp:10.0.0.5:65535", true},
		{"tcp:[::1]:4444", true},
		{"tcp:[2001:db8::5]:1", true},
		{"exec:cat > /tmp/guest-memory", false},
		{"exec:sh -c 'touch /tmp/pwned'", false},
		{"file:/etc/passwd", false},
		{"unix:/run/evil.sock", false},
		{"rdma:10.0.0.5:4444", false},
		{"fd:3", false},
		{"TCP:127.0.0.1:4444", false},
		{"tcp:localhost:4444", false},
		{"tcp:evil.example:4444", false},
		{"tcp:127.0.0.1:0", false},
		{"tcp:127.0.0.1:65536", false},
		{"tcp:127.0.0.1:-1", false},
		{"tcp:127.0.0.1:44a", false},
		{"tcp:127.0.0.1", false},
		{"tcp:127.0.0.1:4444,ipv4=on", false},
		{"tcp:::1:4444", false},
		{"tcp:[127.0.0.1]:4444", false},
		{"tcp:[fe80::1%eth0]:4444", false},
		{"tcp:0.0.0.0:4444", false},
		{"tcp:[::]:4444", false},
		{"tcp:224.0.0.1:4444", false},
		{"tcp: 127.0.0.1:4444", false},
		{"", false},
	} {
		_, err := ParseMigrationURI(tt.uri)
		if (err == nil) != tt.ok {
			t.Errorf("ParseMigrationURI(%q) = %v; want ok %v", tt.uri, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "tcp:HOST:PORT")) {
			t.Errorf("ParseMigrationURI(%q): %v; want an invalid-input error naming tcp:HOST:PORT", tt.uri, err)
		}
	}
}

// An NBD target is HOST:PORT under the same rules, with no scheme.
func TestParseNBDAddress(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:10809", true},
		{"[::1]:10809", true},
		{"tcp:127.0.0.1:10809", false},
		{"nbd.example:10809", false},
		{"unix:/tmp/nbd.sock", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:10809/export", false},
	} {
		if _, err := ParseNBDAddress(tt.addr); (err == nil) != tt.ok {
			t.Errorf("ParseNBDAddress(%q) = %v; want ok %v", tt.addr, err, tt.ok)
		}
	}
	if err := CheckTargets("tcp:127.0.0.1:1", ""); err != nil {
		t.Errorf("a shared-storage migration (no nbd): %v", err)
	}
	if err := CheckTargets("tcp:127.0.0.1:1", "file:/x"); err == nil {
		t.Error("a bad nbd target passed CheckTargets")
	}
}

// The destination's targets must be on the address it registered with.
func TestTargetOnHost(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		in    IncomingReply
		agent string
		ok    bool
	}{
		{"its address", IncomingReply{URI: "tcp:10.0.0.5:4444", NBD: "10.0.0.5:10809"}, "http://10.0.0.5:7401", true},
		{"ipv6", IncomingReply{URI: "tcp:[2001:db8::5]:4444"}, "http://[2001:db8::5]:7401", true},
		{"another host", IncomingReply{URI: "tcp:10.0.0.6:4444"}, "http://10.0.0.5:7401", false},
		{"disk elsewhere", IncomingReply{URI: "tcp:10.0.0.5:4444", NBD: "10.0.0.9:10809"}, "http://10.0.0.5:7401", false},
		{"another loopback", IncomingReply{URI: "tcp:127.0.0.2:4444"}, "http://127.0.0.1:7401", false},
		{"exec", IncomingReply{URI: "exec:true"}, "http://10.0.0.5:7401", false},
		{"all addresses: loopback", IncomingReply{URI: "tcp:127.0.0.1:4444"}, "http://0.0.0.0:7401", true},
		{"all addresses: not loopback", IncomingReply{URI: "tcp:10.0.0.5:4444"}, "http://0.0.0.0:7401", false},
		{"no host: loopback", IncomingReply{URI: "tcp:127.0.0.1:4444"}, "http://:7401", true},
		{"localhost", IncomingReply{URI: "tcp:127.0.0.1:4444"}, "http://localhost:7401", true},
		{"no url", IncomingReply{URI: "tcp:127.0.0.1:4444"}, "", false},
	} {
		err := TargetOnHost(ctx, tt.in, tt.agent)
		if (err == nil) != tt.ok {
			t.Errorf("%s: TargetOnHost(%+v, %q) = %v; want ok %v", tt.name, tt.in, tt.agent, err, tt.ok)
		}
	}
}

// checkTarget fails t unless ap, parsed from s, is a target the agent may
// hand QEMU: prefix, then an IP address without a zone that names a host
// and a port, and nothing else; its canonical form parses to it again.
func checkTarget(t *testing.T, s string, ap netip.AddrPort, parse func(string) (netip.AddrPort, error), prefix string) {
	t.Helper()
	if !strings.HasPrefix(s, prefix) {
		t.Fatalf("%q accepted without %s", s, prefix)
	}
	a := ap.Addr()
	if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || ap.Port() == 0 {
		t.Fatalf("%q accepted as %v", s, ap)
	}
	if strings.Trim(strings.TrimPrefix(s, prefix), "0123456789abcdefABCDEF.:[]") != "" {
		t.Fatalf("%q accepted with characters that are no part of HOST:PORT", s)
	}
	if again, err := parse(prefix + ap.String()); err != nil || again != ap {
		t.Fatalf("%q accepted as %v, whose own form gives %v, %v", s, ap, again, err)
	}
}

// FuzzParseTargets: an accepted migration URI is tcp:IP:PORT and an
// accepted NBD target IP:PORT, nothing else (no exec:, file:, unix:,
// names, zones or options: checkTarget); refusals are errs.Invalid.
func FuzzParseTargets(f *testing.F) {
	for _, s := range []string{"tcp:127.0.0.1:4444", "tcp:[::1]:1", "exec:true", "file:/x", "tcp:a:1", "tcp:[fe80::1%lo]:1", "127.0.0.1:10809",
		"tcp:0.0.0.0:1", "tcp:1.2.3.4:1,ipv4", "[::ffff:1.2.3.4]:1", "10.0.0.2:0", "unix:/tmp/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []struct {
			prefix string
			parse  func(string) (netip.AddrPort, error)
		}{{"tcp:", ParseMigrationURI}, {"", ParseNBDAddress}} {
			ap, err := p.parse(s)
			switch {
			case err != nil && !errors.Is(err, errs.ErrInvalid):
				t.Fatalf("%q refused with %v; want errs.ErrInvalid", s, err)
			case err == nil:
				checkTarget(t, s, ap, p.parse, p.prefix)
			}
		}
	})
}

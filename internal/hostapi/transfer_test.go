package hostapi

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// A disk import names its source agent by its registered base URL only,
// the source's host name and the transfer's token; anything else is 400
// before the destination fetches a byte.
func TestImportDiskValidate(t *testing.T) {
	vm := CreateVM{ID: "6c1d1b1e-9a0f-4e7a-8c55-3f1f0e6b2d11", Name: "v", VCPUs: 1, MemoryMiB: 128, DiskMiB: 64, Pool: api.PoolLocal}
	good := ImportDisk{VM: vm, Source: "https://10.0.0.2:7401", SourceHost: "host1", Token: NewTransferToken()}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good import: %v", err)
	}
	for _, src := range []string{"http://10.0.0.2:7401", "https://host1.lab:7401/", "https://[::1]:7401"} {
		d := good
		d.Source = src
		if err := d.Validate(); err != nil {
			t.Errorf("source %q: %v; want accepted", src, err)
		}
	}
	for _, tt := range []struct {
		why  string
		edit func(*ImportDisk)
		want string
	}{
		{"a file URL", func(d *ImportDisk) { d.Source = "file:///etc/passwd" }, "source agent's URL"},
		{"another scheme", func(d *ImportDisk) { d.Source = "ftp://10.0.0.2:21" }, "source agent's URL"},
		{"no port", func(d *ImportDisk) { d.Source = "https://10.0.0.2" }, "source agent's URL"},
		{"port 0", func(d *ImportDisk) { d.Source = "https://10.0.0.2:0" }, "source agent's URL"},
		{"a path", func(d *ImportDisk) { d.Source = "https://10.0.0.2:7401/v1/vms/x" }, "source agent's URL"},
		{"a query", func(d *ImportDisk) { d.Source = "https://10.0.0.2:7401?x=1" }, "source agent's URL"},
		{"credentials", func(d *ImportDisk) { d.Source = "https://u:p@10.0.0.2:7401" }, "source agent's URL"},
		{"a fragment", func(d *ImportDisk) { d.Source = "https://10.0.0.2:7401#x" }, "source agent's URL"},
		{"no host", func(d *ImportDisk) { d.Source = "https://:7401" }, "source agent's URL"},
		{"no source host", func(d *ImportDisk) { d.SourceHost = "" }, "host name"},
		{"a bad source host", func(d *ImportDisk) { d.SourceHost = "../x" }, "host name"},
		{"no token", func(d *ImportDisk) { d.Token = "" }, "transfer token"},
		{"a short token", func(d *ImportDisk) { d.Token = "abcd" }, "transfer token"},
		{"a token not base64url", func(d *ImportDisk) { d.Token = strings.Repeat("!", 43) }, "transfer token"},
	} {
		d := good
		tt.edit(&d)
		if err := d.Validate(); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want 400 about %s", tt.why, err, tt.want)
		}
	}
}

// Tokens are 32 random bytes, never the same twice; a grant lasts an hour
// and more for a big disk, within a bound.
func TestTransferTokenAndGrant(t *testing.T) {
	a, b := NewTransferToken(), NewTransferToken()
	if a == b || CheckTransferToken(a) != nil || len(a) != 43 {
		t.Errorf("tokens %q, %q", a, b)
	}
	if err := (TransferGrant{Token: a, TTLSeconds: 0}).Validate(); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("a grant for no time: %v; want 400", err)
	}
	if err := (TransferGrant{Token: a, TTLSeconds: MaxTransferGrantSeconds + 1}).Validate(); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("a grant beyond the bound: %v; want 400", err)
	}
	if TransferTTL(0) != time.Hour || TransferTTL(100<<10) <= time.Hour || TransferTTL(api.MaxDiskMiB) != MaxTransferGrantSeconds*time.Second {
		t.Errorf("ttls: %v %v %v", TransferTTL(0), TransferTTL(100<<10), TransferTTL(api.MaxDiskMiB))
	}
}

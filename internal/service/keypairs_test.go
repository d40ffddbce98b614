package service

import (
	"context"
	"errors"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// Whose key pairs a request is about: a member's own only, an admin's
// choice (for a list, everyone's by default), and "anyone" in a cluster
// without a CA.
func TestKeyPairOwner(t *testing.T) {
	member := api.Principal{Role: api.RoleMember, TokenID: "0123456789ab", Project: "alpha"}
	admin := api.Principal{Role: api.RoleAdmin, TokenID: "ffffffffffff"}
	open := api.Principal{Role: api.RoleAdmin, Name: "anyone", AuthDisabled: true}
	for _, c := range []struct {
		p     api.Principal
		asked string
		list  bool
		want  string
		err   error
	}{
		{member, "", false, "0123456789ab", nil},
		{member, "", true, "0123456789ab", nil},
		{member, "0123456789ab", false, "0123456789ab", nil},
		{member, "ffffffffffff", true, "", errs.ErrForbidden},
		{admin, "", false, "ffffffffffff", nil},
		{admin, "", true, "", nil},
		{admin, "0123456789ab", false, "0123456789ab", nil},
		{open, "", false, "anyone", nil},
	} {
		got, err := KeyPairOwner(c.p, c.asked, c.list)
		if got != c.want || !errors.Is(err, c.err) && (err != nil || c.err != nil) {
			t.Errorf("KeyPairOwner(%s, %q, %v) = %q, %v; want %q, %v", c.p, c.asked, c.list, got, err, c.want, c.err)
		}
	}
}

// A key pair is imported with its fingerprints, refused when its key is
// not one, unique by name per owner, and deleted.
func TestCreateKeyPair(t *testing.T) {
	c := newTestService(t, Config{})
	ctx := context.Background()
	by := api.Principal{Role: api.RoleMember, TokenID: "0123456789ab", Project: "alpha"}
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ alice@example"
	k, err := c.CreateKeyPair(ctx, by, KeyOwner(by), api.CreateKeyPairRequest{Name: "laptop", PublicKey: key})
	if err != nil || k.Owner != "0123456789ab" || k.Project != "alpha" || k.Fingerprint != "1e:96:2e:6e:5b:b4:d8:64:75:46:cb:7a:b1:ae:3e:f1" || k.PrivateKey != "" {
		t.Fatalf("imported: %+v, %v", k, err)
	}
	if _, err := c.CreateKeyPair(ctx, by, KeyOwner(by), api.CreateKeyPairRequest{Name: "laptop", PublicKey: key}); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("the name again: %v; want a conflict", err)
	}
	if _, err := c.CreateKeyPair(ctx, by, KeyOwner(by), api.CreateKeyPairRequest{Name: "junk", PublicKey: "ssh-ed25519 garbage"}); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("garbage: %v; want invalid", err)
	}
	if _, err := c.KeyPair(ctx, "ffffffffffff", "laptop"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("another owner's: %v; want not found", err)
	}
	if err := c.DeleteKeyPair(ctx, KeyOwner(by), "laptop"); err != nil {
		t.Fatal(err)
	}
	if ks, err := c.KeyPairs(ctx, ""); err != nil || len(ks) != 0 {
		t.Errorf("after delete: %+v, %v", ks, err)
	}
}

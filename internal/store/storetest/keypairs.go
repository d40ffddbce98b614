package storetest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// Key pairs are one owner's by name: the same name under two owners is
// two key pairs, twice under one a conflict; listed by owner and name,
// deleted by owner and name.
func testKeyPairs(t *testing.T, s store.Store) {
	kp := func(owner, name string) api.KeyPair {
		return api.KeyPair{Name: name, Owner: owner, Project: "alpha", PublicKey: "ssh-ed25519 AAAA " + name,
			Fingerprint: "aa:bb", FingerprintSHA256: "SHA256:x", Type: api.KeyPairSSH, CreatedAt: now()}
	}
	a1, a2, b1 := kp("0123456789ab", "laptop"), kp("0123456789ab", "desk top"), kp("ba9876543210", "laptop")
	for _, k := range []api.KeyPair{a1, a2, b1} {
		if err := s.CreateKeyPair(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateKeyPair(ctx, kp("0123456789ab", "laptop")); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("the same owner and name again: %v; want a conflict", err)
	}
	if got, err := s.KeyPair(ctx, "0123456789ab", "laptop"); err != nil || !reflect.DeepEqual(got, a1) {
		t.Errorf("key pair = %+v, %v; want %+v", got, err, a1)
	}
	if _, err := s.KeyPair(ctx, "ffffffffffff", "laptop"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("another owner's name: %v; want not found", err)
	}
	names := func(ks []api.KeyPair) (out []string) {
		for _, k := range ks {
			out = append(out, k.Owner+"/"+k.Name)
		}
		return out
	}
	if ks, err := s.KeyPairs(ctx, "0123456789ab"); err != nil || !reflect.DeepEqual(names(ks), []string{"0123456789ab/desk top", "0123456789ab/laptop"}) {
		t.Errorf("one owner's: %v, %v", names(ks), err)
	}
	if ks, err := s.KeyPairs(ctx, ""); err != nil || len(ks) != 3 || ks[2].Owner != "ba9876543210" {
		t.Errorf("every owner's: %v, %v", names(ks), err)
	}
	if err := s.DeleteKeyPair(ctx, "0123456789ab", "laptop"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKeyPair(ctx, "0123456789ab", "laptop"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("delete again: %v; want not found", err)
	}
	if _, err := s.KeyPair(ctx, "ba9876543210", "laptop"); err != nil {
		t.Errorf("the other owner's laptop went with it: %v", err)
	}
}

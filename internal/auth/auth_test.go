package auth

import (
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	id, secret, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ParseToken(secret)
	if !ok || got != id {
		t.Fatalf("ParseToken(%q) = %q, %v; want %q", secret, got, ok, id)
	}
	if !Matches(secret, hash) {
		t.Fatal("a token does not match its own hash")
	}
	if Matches(secret+"x", hash) || Matches(strings.Replace(secret, id, "000000000000", 1), hash) {
		t.Fatal("another token matches the hash")
	}
	if strings.Contains(hash, secret[len(prefix)+13:]) {
		t.Fatal("the hash holds the secret")
	}
	for _, bad := range []string{"", "gwt_", "gwt_abc_def", id, "Bearer " + secret, secret + "=", "gwt_ABCDEF012345_" + secret[17:]} {
		if _, ok := ParseToken(bad); ok {
			t.Errorf("ParseToken(%q) accepted", bad)
		}
	}
}

func TestBootstrapOnce(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadBootstrap(dir); ok || err != nil {
		t.Fatalf("ReadBootstrap of an empty dir: %v %v", ok, err)
	}
	secret, err := WriteBootstrap(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, ok, err := ReadBootstrap(dir)
	if !ok || err != nil || !Matches(secret, b.SHA256) {
		t.Fatalf("ReadBootstrap: %+v %v %v", b, ok, err)
	}
	if id, _ := ParseToken(secret); id != b.ID {
		t.Fatalf("the record's ID %s is not the token's %s", b.ID, id)
	}
	if _, err := WriteBootstrap(dir); err == nil {
		t.Fatal("a second bootstrap token replaced the first")
	}
}

func TestBearer(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer abc ": "abc", "Basic abc": "", "": "", "Bearer": ""} {
		if got := Bearer(h); got != want {
			t.Errorf("Bearer(%q) = %q, want %q", h, got, want)
		}
	}
}

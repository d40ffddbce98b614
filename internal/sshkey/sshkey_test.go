package sshkey

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Keys made by ssh-keygen (OpenSSH 9.2), with the fingerprints its -l
// shows.
const (
	testEd25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ alice@example"
	testRSA     = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC6/e4ydndqFSq8/G5q8phLPwyA0NpcMO4q4zyFpNjt5EEGnZXdU3sasLWYdlkIDfMoSwpvaoHXXXtfCGpT8Jc9aJE79QurEyFub0Q1trUc/ZHrdwl2UBBngT5dwD4adMzzzs1bzeS/jWLCt6FoaUXKYEgOssfaX0qOfCf+HAAUADB4GbeYaXUKOwkwOXL02FSdyWBJwQFvPyorczw4dz9a3R3s4nV5qlWabMs8virJeVM2K2DsYXDnnVyFHBSwxuPIgmJEtHuFyjsg/q7FCna7RsvfTUmwHk5xW66x8/eJqyW0EOfkKmF1gIkIAJ4IF5qchyM3FOq8FjJyW90DUj1f bob@example"
	testECDSA   = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBN61LyrL3IdBa6MuhEuTn0cBBLEeSt36uDwW3S8Pp/hpFgCDXcIJH7rQxJkPy+IBBeVgkbReebX1bAL8PyyjiXiZiOOtZLcTLhpBEDANp+LRwLceyZNYEE067LeCkAYdYA=="
)

func TestParseAndFingerprints(t *testing.T) {
	for _, tt := range []struct {
		in, typ, comment, md5, sha256 string
	}{
		{testEd25519, Ed25519, "alice@example", "1e:96:2e:6e:5b:b4:d8:64:75:46:cb:7a:b1:ae:3e:f1", "SHA256:/wbZ2fwG6Dl10p2XIUeFbAfRN4nLScxVo88DX7DuUQA"},
		{testRSA, RSA, "bob@example", "98:e9:5e:b5:6a:e1:24:6d:1f:5f:e7:61:d0:8c:df:be", "SHA256:Du+0hFRMW4dOfZOMVVVJn2QON3IZq3FBQI86BYJTbLE"},
		{testECDSA, ECDSAP384, "", "84:1b:a3:56:a8:f3:3a:00:27:69:81:81:75:04:17:28", "SHA256:4uGoQKCjLeY2ezp5E0IZlhDQAkCW6FMIjmK8eOjG1Eo"},
	} {
		k, err := Parse(tt.in)
		if err != nil {
			t.Errorf("%.30s: %v", tt.in, err)
			continue
		}
		if k.Type != tt.typ || k.Comment != tt.comment || k.MD5() != tt.md5 || k.SHA256() != tt.sha256 {
			t.Errorf("%.30s: %s %q %s %s", tt.in, k.Type, k.Comment, k.MD5(), k.SHA256())
		}
		if k.String() != tt.in {
			t.Errorf("String() = %q; want %q", k.String(), tt.in)
		}
		// White space around it and between its parts, a trailing
		// newline (a .pub file's), a tab: the same key.
		messy := "  " + strings.Replace(tt.in, " ", " \t ", 2) + "\n"
		if k2, err := Parse(messy); err != nil || k2.String() != tt.in {
			t.Errorf("%q: %v, %q", messy, err, k2.String())
		}
	}
	if k, err := Parse("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ my key  (laptop)"); err != nil || k.Comment != "my key  (laptop)" {
		t.Errorf("a comment with spaces: %q, %v", k.Comment, err)
	}
}

// wireKey encodes fields as a key's wire form, base64.
func wireKey(typ string, fields ...[]byte) string {
	return typ + " " + base64.StdEncoding.EncodeToString(wire(nil, append([][]byte{[]byte(typ)}, fields...)...))
}

func TestParseRefuses(t *testing.T) {
	ed := wire(nil, []byte(Ed25519), make([]byte, 32))
	for _, tt := range []struct {
		name, in, says string
	}{
		{"empty", "  \n", "empty"},
		{"garbage", "hello world", `key type "hello" is not one godwit takes`},
		{"two keys", testEd25519 + "\n" + testRSA, "more than one line"},
		{"options", `command="ls" ` + testEd25519, "is not one godwit takes"},
		{"dsa", "ssh-dss AAAAB3NzaC1kc3M=", "dsa keys"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----", "PEM block"},
		{"no data", "ssh-ed25519", "no key data"},
		{"not base64", "ssh-ed25519 AAAA!!!!", "not base64"},
		{"type mismatch", "ssh-rsa " + base64.StdEncoding.EncodeToString(ed), `of type "ssh-ed25519"`},
		{"truncated", "ssh-ed25519 " + base64.StdEncoding.EncodeToString(ed[:20]), "only"},
		{"short ed25519", wireKey(Ed25519, make([]byte, 31)), "31 bytes"},
		{"trailing bytes", "ssh-ed25519 " + base64.StdEncoding.EncodeToString(append(ed, 0)), "1 bytes follow"},
		{"short rsa", wireKey(RSA, []byte{1, 0, 1}, append([]byte{0x7f}, make([]byte, 63)...)), "511 bits"},
		{"even exponent", wireKey(RSA, []byte{4}, append([]byte{0x7f}, make([]byte, 255)...)), "exponent"},
		{"negative modulus", wireKey(RSA, []byte{3}, append([]byte{0x80}, make([]byte, 255)...)), "negative"},
		{"wrong curve", wireKey(ECDSAP256, []byte("nistp384"), []byte{4}), `curve is "nistp384"`},
		{"off the curve", wireKey(ECDSAP256, []byte("nistp256"), append([]byte{4}, make([]byte, 64)...)), "not on nistp256"},
		{"control character", testEd25519 + " a\x01b", "control character"},
	} {
		if _, err := Parse(tt.in); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v; want an error saying %q", tt.name, err, tt.says)
		}
	}
}

// The private key is what ssh-keygen writes: a fixed key and check
// number give these bytes, and ssh-keygen reads back the public key of
// a generated one.
func TestGenerate(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub, pem, err := privateKey(priv.Public().(ed25519.PublicKey), priv, "k1", [4]byte{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(pub.String()); err != nil || pub.Comment != "k1" {
		t.Fatalf("public key %q: %v", pub, err)
	}
	body := pemBody(t, pem)
	if !strings.HasPrefix(string(body), "openssh-key-v1\x00\x00\x00\x00\x04none\x00\x00\x00\x04none\x00\x00\x00\x00\x00\x00\x00\x01") {
		t.Errorf("private key header %q", body[:60])
	}
	// The private section: check numbers, the key, comment, padding 1, 2, ….
	rest := body[len("openssh-key-v1\x00")+4+4+4+4+4+4:]
	r := &reader{rest}
	blob, _ := r.string()
	secret, err := r.string()
	if err != nil || string(blob) != string(pub.Blob) || len(r.b) != 0 {
		t.Fatalf("public key in the private key: %x, %v", blob, err)
	}
	if len(secret)%8 != 0 || string(secret[:8]) != "\x01\x02\x03\x04\x01\x02\x03\x04" {
		t.Errorf("private section %x", secret)
	}
	sr := &reader{secret[8:]}
	var got [][]byte
	for range 4 {
		f, err := sr.string()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f)
	}
	if string(got[0]) != Ed25519 || string(got[2]) != string(priv) || string(got[3]) != "k1" {
		t.Errorf("private section fields %q", got)
	}
	for i, b := range sr.b {
		if b != byte(i+1) {
			t.Errorf("padding %x", sr.b)
		}
	}
	if n := binary.BigEndian.Uint32(secret[8:]); n != uint32(len(Ed25519)) {
		t.Errorf("key type length %d", n)
	}

	k, key, err := Generate("gen@godwit")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen is not installed: the generated key is not read back")
	}
	path := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-y", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -y: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != k.String() {
		t.Errorf("ssh-keygen reads the public key %q; want %q", got, k.String())
	}
}

func pemBody(t *testing.T, b []byte) []byte {
	t.Helper()
	s := string(b)
	if !strings.HasPrefix(s, "-----BEGIN OPENSSH PRIVATE KEY-----\n") || !strings.HasSuffix(s, "-----END OPENSSH PRIVATE KEY-----\n") {
		t.Fatalf("not an OpenSSH private key:\n%s", s)
	}
	s = strings.TrimPrefix(s, "-----BEGIN OPENSSH PRIVATE KEY-----\n")
	s = strings.TrimSuffix(s, "-----END OPENSSH PRIVATE KEY-----\n")
	body, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(s, "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Parse never panics, and what it takes it writes back as a key it
// takes again, the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{testEd25519, testRSA, testECDSA, "ssh-ed25519 AAAA", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAAQ=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			return
		}
		k2, err := Parse(k.String())
		if err != nil || k2.String() != k.String() || k2.MD5() != k.MD5() {
			t.Fatalf("%q parsed, and its String %q does not parse back the same: %v", s, k.String(), err)
		}
	})
}

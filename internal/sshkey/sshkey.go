// Package sshkey reads and makes OpenSSH public keys with the standard
// library alone: the one-line form of authorized_keys and .pub files
// ("ssh-ed25519 AAAA… comment"), checked down to the key inside; the
// fingerprints ssh-keygen and Nova show; and a new ed25519 key pair with
// its private key in OpenSSH's own format.
//
// A key is "TYPE BASE64 [COMMENT]". BASE64 is the key's wire encoding
// (RFC 4253 §6.6): a string (uint32 length, bytes) naming the type again,
// then the type's fields. Parse checks that the inner type is the outer
// one and that each field is what the type says: ed25519 a 32-byte key
// (RFC 8709), RSA an exponent and a modulus of 1024 to 16384 bits
// (OpenSSH's own bounds), ECDSA a curve name matching the type and a point
// on that curve (RFC 5656), with nothing left over. DSA keys are refused,
// as OpenSSH refuses them by default.
package sshkey

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// The key types Parse takes.
const (
	Ed25519   = "ssh-ed25519"
	RSA       = "ssh-rsa"
	ECDSAP256 = "ecdsa-sha2-nistp256"
	ECDSAP384 = "ecdsa-sha2-nistp384"
	ECDSAP521 = "ecdsa-sha2-nistp521"
)

// Types lists the key types Parse takes, for messages.
var Types = []string{Ed25519, RSA, ECDSAP256, ECDSAP384, ECDSAP521}

// OpenSSH's bounds on an RSA modulus.
const (
	MinRSABits = 1024
	MaxRSABits = 16384
)

// Key is a parsed public key.
type Key struct {
	Type    string // one of Types
	Blob    []byte // the wire encoding: what BASE64 decodes to
	Comment string // free text after the key, may be empty
}

// Parse reads one public key in the one-line OpenSSH form. Surrounding
// white space is dropped; a second line, an authorized_keys option
// before the type, or a key that is not what its type says is refused
// with what is wrong.
func Parse(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, errors.New("the public key is empty; give one like \"ssh-ed25519 AAAAC3Nza… you@host\" (the contents of a .pub file)")
	}
	if strings.ContainsAny(s, "\r\n") {
		return Key{}, errors.New("the public key holds more than one line; give one key, on one line")
	}
	typ, rest := field(s)
	b64, comment := field(rest)
	switch {
	case typ == "ssh-dss":
		return Key{}, errors.New("dsa keys (ssh-dss) are refused, as OpenSSH refuses them: make an ed25519 key with ssh-keygen -t ed25519")
	case strings.HasPrefix(typ, "-----BEGIN"):
		return Key{}, errors.New("this is a PEM block, perhaps a private key: give the public key (the .pub file, or ssh-keygen -y -f KEY)")
	case !known(typ):
		return Key{}, fmt.Errorf("key type %q is not one godwit takes: use %s", short(typ), strings.Join(Types, ", "))
	}
	comment = strings.TrimSpace(comment)
	for _, c := range comment {
		if c < 0x20 || c == 0x7f {
			return Key{}, fmt.Errorf("the key's comment holds control character %U", c)
		}
	}
	if b64 == "" {
		return Key{}, fmt.Errorf("the %s key has no key data after its type", typ)
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Key{}, fmt.Errorf("the %s key's data is not base64: %w", typ, err)
	}
	if err := check(typ, blob); err != nil {
		return Key{}, fmt.Errorf("the %s key is not a valid key: %w", typ, err)
	}
	return Key{Type: typ, Blob: blob, Comment: comment}, nil
}

// field splits s into its first word (up to a space or tab) and the
// rest, each without the white space between them.
func field(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i+1:], " \t")
}

func known(typ string) bool {
	for _, t := range Types {
		if t == typ {
			return true
		}
	}
	return false
}

// short quotes at most the start of a long word in a message.
func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// String is the key in its one-line form: type, base64, and the comment
// when there is one.
func (k Key) String() string {
	s := k.Type + " " + base64.StdEncoding.EncodeToString(k.Blob)
	if k.Comment != "" {
		s += " " + k.Comment
	}
	return s
}

// MD5 is the key's MD5 fingerprint as Nova shows it and ssh-keygen -E
// md5 -l does (without its "MD5:"): hex pairs joined by colons.
func (k Key) MD5() string {
	sum := md5.Sum(k.Blob)
	h := hex.EncodeToString(sum[:])
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// SHA256 is the key's SHA-256 fingerprint as ssh-keygen -l shows it:
// "SHA256:" and the unpadded base64 of the hash.
func (k Key) SHA256() string {
	sum := sha256.Sum256(k.Blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// reader reads the wire encoding's fields.
type reader struct{ b []byte }

// string reads a length-prefixed byte string.
func (r *reader) string() ([]byte, error) {
	if len(r.b) < 4 {
		return nil, errors.New("it ends inside a field's length")
	}
	n := binary.BigEndian.Uint32(r.b)
	if uint64(n) > uint64(len(r.b)-4) {
		return nil, fmt.Errorf("a field says it is %d bytes, and only %d follow", n, len(r.b)-4)
	}
	s := r.b[4 : 4+n]
	r.b = r.b[4+n:]
	return s, nil
}

// mpint reads a multiple-precision integer (RFC 4251 §5) that must not
// be negative. Leading zero bytes are taken, as OpenSSH takes them.
func (r *reader) mpint(what string) (*big.Int, error) {
	b, err := r.string()
	if err != nil {
		return nil, err
	}
	if len(b) > 0 && b[0]&0x80 != 0 {
		return nil, fmt.Errorf("its %s is negative", what)
	}
	return new(big.Int).SetBytes(b), nil
}

// curves are the ECDSA types' curve names and curves.
var curves = map[string]struct {
	name  string
	curve ecdh.Curve
}{
	ECDSAP256: {"nistp256", ecdh.P256()},
	ECDSAP384: {"nistp384", ecdh.P384()},
	ECDSAP521: {"nistp521", ecdh.P521()},
}

// check checks a key's wire encoding against its type.
func check(typ string, blob []byte) error {
	r := &reader{blob}
	inner, err := r.string()
	if err != nil {
		return err
	}
	if string(inner) != typ {
		return fmt.Errorf("its data is of type %q", short(string(inner)))
	}
	switch typ {
	case Ed25519:
		pub, err := r.string()
		if err != nil {
			return err
		}
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("its key is %d bytes; an ed25519 key is %d", len(pub), ed25519.PublicKeySize)
		}
	case RSA:
		e, err := r.mpint("exponent")
		if err != nil {
			return err
		}
		n, err := r.mpint("modulus")
		if err != nil {
			return err
		}
		if e.Bit(0) == 0 || e.Cmp(big.NewInt(3)) < 0 || e.BitLen() > 64 {
			return fmt.Errorf("its exponent %s is not an odd number from 3 to 2^64", short(e.String()))
		}
		if bits := n.BitLen(); bits < MinRSABits || bits > MaxRSABits {
			return fmt.Errorf("its modulus is %d bits; use %d to %d (3072 or more today)", bits, MinRSABits, MaxRSABits)
		}
		if n.Bit(0) == 0 {
			return errors.New("its modulus is even")
		}
	default: // ECDSA
		c := curves[typ]
		name, err := r.string()
		if err != nil {
			return err
		}
		if string(name) != c.name {
			return fmt.Errorf("its curve is %q, not %q", short(string(name)), c.name)
		}
		q, err := r.string()
		if err != nil {
			return err
		}
		if _, err := c.curve.NewPublicKey(q); err != nil {
			return fmt.Errorf("its point is not on %s (or not in uncompressed form)", c.name)
		}
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%d bytes follow the key", len(r.b))
	}
	return nil
}

// wire appends length-prefixed strings.
func wire(b []byte, fields ...[]byte) []byte {
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// Generate makes an ed25519 key pair: the public key, with comment, and
// the private key in OpenSSH's format (PEM "OPENSSH PRIVATE KEY", not
// encrypted), as ssh-keygen -t ed25519 -N "" writes it. Nothing of it is
// kept here.
func Generate(comment string) (Key, []byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, nil, fmt.Errorf("generate an ed25519 key: %w", err)
	}
	var check [4]byte
	if _, err := rand.Read(check[:]); err != nil {
		return Key{}, nil, fmt.Errorf("generate an ed25519 key: %w", err)
	}
	return privateKey(pub, priv, comment, check)
}

// privateKey is the key pair of pub and priv (seed and public key, as
// crypto/ed25519 holds it) in OpenSSH's private key format
// (PROTOCOL.key in OpenSSH's source): a magic string, cipher and KDF
// "none", one public key, and the private section — a check number
// twice, the key, its comment — padded to the cipher's block size (8).
func privateKey(pub ed25519.PublicKey, priv ed25519.PrivateKey, comment string, check [4]byte) (Key, []byte, error) {
	if strings.ContainsAny(comment, "\r\n") {
		return Key{}, nil, errors.New("a key's comment is one line")
	}
	blob := wire(nil, []byte(Ed25519), pub)
	secret := append(append([]byte(nil), check[:]...), check[:]...)
	secret = wire(secret, []byte(Ed25519), pub, priv, []byte(comment))
	for i := byte(1); len(secret)%8 != 0; i++ {
		secret = append(secret, i)
	}
	body := append([]byte("openssh-key-v1\x00"), wire(nil, []byte("none"), []byte("none"), nil)...)
	body = binary.BigEndian.AppendUint32(body, 1)
	body = wire(body, blob, secret)
	var out bytes.Buffer
	if err := pem.Encode(&out, &pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: body}); err != nil {
		return Key{}, nil, fmt.Errorf("encode the private key: %w", err)
	}
	return Key{Type: Ed25519, Blob: blob, Comment: comment}, out.Bytes(), nil
}

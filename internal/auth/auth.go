// Package auth holds what API authentication needs below the HTTP layer:
// API tokens (made, parsed and hashed), the bootstrap admin token that
// godwit init and godwit up write beside the cluster's CA, and the
// request's principal carried in its context.
//
// A token is "gwt_" + a 12-hex-digit ID + "_" + 43 characters of
// base64url (32 random bytes). The ID finds its record; the store keeps
// only the SHA-256 of the whole token, compared in constant time. A
// secret of 256 random bits needs no slow hash: it cannot be guessed,
// only stolen, and a stolen hash does not give it back.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
)

const prefix = "gwt_"

var tokenRE = regexp.MustCompile(`^gwt_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$`)

// NewToken makes a token: its ID, its secret (the whole token, shown
// once) and the hash to store.
func NewToken() (id, secret, hash string, err error) {
	var idb [6]byte
	var sb [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", "", "", fmt.Errorf("make a token: %w", err)
	}
	if _, err := rand.Read(sb[:]); err != nil {
		return "", "", "", fmt.Errorf("make a token: %w", err)
	}
	id = hex.EncodeToString(idb[:])
	secret = prefix + id + "_" + base64.RawURLEncoding.EncodeToString(sb[:])
	return id, secret, Hash(secret), nil
}

// ParseToken returns a token's ID, or false when it is not shaped like
// one of godwit's tokens.
func ParseToken(secret string) (id string, ok bool) {
	m := tokenRE.FindStringSubmatch(secret)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// Hash is what the store keeps of a token.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Matches reports whether secret hashes to hash, in constant time.
func Matches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(Hash(secret)), []byte(hash)) == 1
}

// BootstrapFile is the bootstrap admin token's record beside the CA: its
// ID and hash, never the secret. The controller adds it to its store when
// it starts, once (a revoked one stays revoked).
const BootstrapFile = "bootstrap-token.json"

// Bootstrap is the bootstrap token's record.
type Bootstrap struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"created_at"`
}

// WriteBootstrap makes the cluster's first admin token, records its hash
// in dir (the controller's TLS directory) and returns its secret. It
// refuses to replace one: the first admin token is made once.
func WriteBootstrap(dir string) (string, error) {
	id, secret, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(Bootstrap{ID: id, Name: "bootstrap-admin", SHA256: hash, CreatedAt: time.Now().UTC()}, "", "  ")
	f, err := os.OpenFile(filepath.Join(dir, BootstrapFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("record the bootstrap admin token: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return secret, err
}

// ReadBootstrap reads the bootstrap token's record from dir; false when
// there is none.
func ReadBootstrap(dir string) (Bootstrap, bool, error) {
	var b Bootstrap
	data, err := os.ReadFile(filepath.Join(dir, BootstrapFile))
	if errors.Is(err, os.ErrNotExist) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, false, fmt.Errorf("%s: %w", filepath.Join(dir, BootstrapFile), err)
	}
	if !tokenIDRE.MatchString(b.ID) || len(b.SHA256) != 64 {
		return b, false, fmt.Errorf("%s is not a bootstrap token record", filepath.Join(dir, BootstrapFile))
	}
	return b, true, nil
}

var tokenIDRE = regexp.MustCompile(`^[0-9a-f]{12}$`)

// ValidTokenID reports whether id is shaped like a token's ID.
func ValidTokenID(id string) bool { return tokenIDRE.MatchString(id) }

// Bearer returns the token of an Authorization header ("Bearer T"), or
// "" when there is none.
func Bearer(header string) string {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

type principalKey struct{}

// With returns ctx carrying the request's principal.
func With(ctx context.Context, p api.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// From returns the principal ctx carries, or an anonymous one.
func From(ctx context.Context) api.Principal {
	p, _ := ctx.Value(principalKey{}).(api.Principal)
	return p
}

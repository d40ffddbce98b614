package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// KeyPair is an SSH public key kept under a name, as Nova's key pairs
// are: each is one user's — here an API token's, its Owner — and a VM
// created with key_name gets its public key in its NoCloud seed
// (meta-data public-keys), which cloud-init writes to the default user's
// authorized_keys. A VM keeps the key it was made with: deleting the key
// pair changes no VM.
type KeyPair struct {
	Name string `json:"name"`
	// Owner is the ID of the token that owns the key pair (Keystone's
	// user ID in the Nova API); names are unique per owner. In a
	// cluster without a CA, where no token is asked, it is "anyone".
	Owner string `json:"owner"`
	// Project is the owner's project when the key pair was made.
	Project string `json:"project"`
	// PublicKey is the OpenSSH public key, on one line: type, base64,
	// and its comment if it has one.
	PublicKey string `json:"public_key"`
	// Fingerprint is the key's MD5 fingerprint as Nova shows it
	// ("1e:96:2e:…", ssh-keygen -l -E md5).
	Fingerprint string `json:"fingerprint"`
	// FingerprintSHA256 is the key's SHA-256 fingerprint as ssh-keygen
	// -l shows it ("SHA256:/wbZ2f…").
	FingerprintSHA256 string `json:"fingerprint_sha256"`
	// Type is always "ssh" (KeyPairSSH): Nova's x509 type is not kept.
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
}

// KeyPairSSH is the one type of key pair.
const KeyPairSSH = "ssh"

// CreateKeyPairRequest is the body of POST /v1/keypairs.
type CreateKeyPairRequest struct {
	// Name is the key pair's name: 1 to 255 letters, digits, spaces and
	// '.', '_', '-', '@' (Nova's), unique among its owner's.
	Name string `json:"name"`
	// PublicKey is the OpenSSH public key to import, on one line (the
	// contents of a .pub file): ssh-ed25519, ssh-rsa (1024 to 16384
	// bits) or ecdsa-sha2-nistp256/384/521. Empty: godwit generates an
	// ed25519 key pair and answers with its private key, once.
	PublicKey string `json:"public_key,omitempty"`
	// Owner, an admin's only, makes the key pair another token's (its
	// ID); empty: the caller's.
	Owner string `json:"owner,omitempty"`
}

// CreatedKeyPair is the reply to POST /v1/keypairs: the key pair and,
// when godwit generated it, its private key in OpenSSH's format, in this
// reply only (godwit keeps no copy).
type CreatedKeyPair struct {
	KeyPair
	PrivateKey string `json:"private_key,omitempty"`
}

// Bounds of a key pair.
const (
	MaxKeyPairNameLen = 255
	MaxPublicKeyBytes = 16 << 10 // an RSA key of 16384 bits is under 3 KiB
)

var keyPairNameRE = regexp.MustCompile(`^[A-Za-z0-9 ._@-]+$`)

// ValidateKeyPairName checks a key pair's name, as Nova does (2.92's
// characters): letters, digits, spaces, '.', '_', '-' and '@', at most
// MaxKeyPairNameLen, not only spaces.
func ValidateKeyPairName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("key pair name is empty; give one, e.g. laptop")
	case len(name) > MaxKeyPairNameLen:
		return fmt.Errorf("key pair name is %d characters; use at most %d", len(name), MaxKeyPairNameLen)
	case !keyPairNameRE.MatchString(name):
		return fmt.Errorf("key pair name %q is invalid: use letters, digits, spaces, '.', '_', '-' and '@', e.g. laptop", name)
	case strings.Trim(name, " ") != name:
		return fmt.Errorf("key pair name %q starts or ends with a space", name)
	}
	return nil
}

// keyPairPath is a key pair's path, with ?owner= when one is named.
func keyPairPath(name, owner string) string {
	p := "/v1/keypairs"
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	if owner != "" {
		p += "?" + url.Values{"owner": {owner}}.Encode()
	}
	return p
}

// KeyPairs lists key pairs by owner and name: a member's own; an
// admin's every token's, or owner's only when owner is given.
func (c *Client) KeyPairs(ctx context.Context, owner string) ([]KeyPair, error) {
	var ks []KeyPair
	err := c.Do(ctx, http.MethodGet, keyPairPath("", owner), nil, &ks)
	return ks, err
}

// KeyPair returns one of the caller's key pairs by name; an admin names
// another token's with owner.
func (c *Client) KeyPair(ctx context.Context, name, owner string) (KeyPair, error) {
	var k KeyPair
	err := c.Do(ctx, http.MethodGet, keyPairPath(name, owner), nil, &k)
	return k, err
}

// CreateKeyPair imports a public key as a key pair, or with no
// PublicKey generates one (the private key is in the reply only).
func (c *Client) CreateKeyPair(ctx context.Context, req CreateKeyPairRequest) (CreatedKeyPair, error) {
	var k CreatedKeyPair
	err := c.Do(ctx, http.MethodPost, "/v1/keypairs", req, &k)
	return k, err
}

// DeleteKeyPair removes one of the caller's key pairs (an admin's:
// owner's); VMs made with it keep its key.
func (c *Client) DeleteKeyPair(ctx context.Context, name, owner string) error {
	return c.Do(ctx, http.MethodDelete, keyPairPath(name, owner), nil, nil)
}

package service

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/sshkey"
)

// Key pairs (api.KeyPair): SSH public keys by name, each an API token's,
// as Nova's are a user's. A VM created with a key_name copies the key
// pair's public key (api.VM.PublicKey), which the agent puts in the
// guest's NoCloud seed (meta-data public-keys): deleting the key pair
// later changes no VM.

// KeyOwner is the owner of the key pairs a principal makes and uses: its
// token's ID, as Keystone's user ID is (package nova); a cluster without
// a CA has one caller, named "anyone".
func KeyOwner(p api.Principal) string {
	if p.TokenID != "" {
		return p.TokenID
	}
	return p.Name
}

// KeyPairOwner is whose key pairs a request of p's is about: asked, or
// when empty p's own (for a list an admin's empty ask is every owner's,
// ""). An admin may name any owner; a member only itself.
func KeyPairOwner(p api.Principal, asked string, list bool) (string, error) {
	own := KeyOwner(p)
	switch {
	case asked == "" && list && p.Role == api.RoleAdmin:
		return "", nil
	case asked == "":
		return own, nil
	case asked == own || p.Role == api.RoleAdmin:
		return asked, nil
	}
	return "", errs.Forbidden("a member sees and makes only its own key pairs (owner %s), not %s's; the request came with the %s", own, asked, p)
}

// KeyPairs lists owner's key pairs by name, or with owner "" every
// owner's.
func (c *Service) KeyPairs(ctx context.Context, owner string) ([]api.KeyPair, error) {
	return c.store.KeyPairs(ctx, owner)
}

// KeyPair returns one of owner's key pairs, or a not-found error that
// says how to list them.
func (c *Service) KeyPair(ctx context.Context, owner, name string) (api.KeyPair, error) {
	k, err := c.store.KeyPair(ctx, owner, name)
	if errors.Is(err, errs.ErrNotFound) {
		return k, errs.NotFound("key pair %q not found; list key pairs with: godwit keypair list", name)
	}
	return k, err
}

// CreateKeyPair imports req's public key as a key pair of owner's (see
// KeyPairOwner: by's own unless an admin names another token), or
// generates an ed25519 one and answers with its private key, which is
// kept nowhere. The key pair's project is its owner's.
func (c *Service) CreateKeyPair(ctx context.Context, by api.Principal, owner string, req api.CreateKeyPairRequest) (api.CreatedKeyPair, error) {
	if err := api.ValidateKeyPairName(req.Name); err != nil {
		return api.CreatedKeyPair{}, errs.Invalid("%v", err)
	}
	if len(req.PublicKey) > api.MaxPublicKeyBytes {
		return api.CreatedKeyPair{}, errs.Invalid("the public key is %d bytes; a key is at most %d", len(req.PublicKey), api.MaxPublicKeyBytes)
	}
	project := by.Project
	if owner != KeyOwner(by) {
		t, err := c.store.Token(ctx, owner)
		if errors.Is(err, errs.ErrNotFound) {
			return api.CreatedKeyPair{}, errs.Invalid("owner %q is no token of this cluster; list tokens with: godwit token list", owner)
		} else if err != nil {
			return api.CreatedKeyPair{}, err
		}
		project = t.Project
	}
	if project == "" {
		project = "default"
	}
	var key sshkey.Key
	var private []byte
	var err error
	if strings.TrimSpace(req.PublicKey) == "" {
		key, private, err = sshkey.Generate(req.Name)
	} else if key, err = sshkey.Parse(req.PublicKey); err != nil {
		err = errs.Invalid("%v", err)
	}
	if err != nil {
		return api.CreatedKeyPair{}, err
	}
	k := api.KeyPair{Name: req.Name, Owner: owner, Project: project, PublicKey: key.String(),
		Fingerprint: key.MD5(), FingerprintSHA256: key.SHA256(), Type: api.KeyPairSSH, CreatedAt: time.Now().UTC()}
	if err := c.store.CreateKeyPair(ctx, k); err != nil {
		return api.CreatedKeyPair{}, err
	}
	c.log.Info("key pair created", "name", k.Name, "owner", k.Owner, "type", key.Type, "fingerprint", k.FingerprintSHA256,
		"generated", private != nil, "by", by.String())
	return api.CreatedKeyPair{KeyPair: k, PrivateKey: string(private)}, nil
}

// DeleteKeyPair removes one of owner's key pairs; the VMs made with it
// keep its key.
func (c *Service) DeleteKeyPair(ctx context.Context, owner, name string) error {
	if err := c.store.DeleteKeyPair(ctx, owner, name); err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return errs.NotFound("key pair %q not found; list key pairs with: godwit keypair list", name)
		}
		return err
	}
	c.log.Info("key pair deleted", "name", name, "owner", owner)
	return nil
}

// vmKey gives a VM created with a key_name its key pair's public key.
// The key pair is the caller's: the principal the controller put in the
// request's context (auth.With), as Nova's key_name is the user's.
func (c *Service) vmKey(ctx context.Context, vm *api.VM, name string) error {
	if name == "" {
		return nil
	}
	if err := api.ValidateKeyPairName(name); err != nil {
		return errs.Invalid("key_name: %v", err)
	}
	k, err := c.store.KeyPair(ctx, KeyOwner(auth.From(ctx)), name)
	if errors.Is(err, errs.ErrNotFound) {
		// 400, as Nova's "Invalid key_name provided."
		return errs.Invalid("key pair %q not found (invalid key_name): the VM takes one of the caller's key pairs; list them with: godwit keypair list", name)
	}
	if err != nil {
		return err
	}
	vm.KeyName, vm.PublicKey = k.Name, k.PublicKey
	return nil
}

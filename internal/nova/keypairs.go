package nova

import (
	"hash/fnv"
	"net/http"
	"slices"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/service"
)

// Key pairs are godwit's (godwit keypair): a Nova user is a godwit token,
// so a key pair's user_id is its owner, the token's ID. As in Nova, every
// call is about the caller's own key pairs; from 2.10 an admin names
// another user's with user_id. From 2.2 a key pair shows its type (always
// ssh: x509 is refused) and create answers 201, delete 204; from 2.35 the
// list pages (limit, marker: a key pair's name). A create without
// public_key generates an ed25519 key pair and answers with its private
// key, as Nova did until 2.92.

// keypairOwner is whose key pairs a request is about: the caller's, or
// from 2.10 an admin's choice of user_id.
func keypairOwner(r *http.Request, v Microversion, userID string) (string, error) {
	if !v.AtLeast(10) {
		userID = ""
	}
	return service.KeyPairOwner(auth.From(r.Context()), userID, false)
}

// keypairID is the number Nova shows as a key pair's id, made from its
// owner and name.
func keypairID(k api.KeyPair) int {
	h := fnv.New32a()
	h.Write([]byte(k.Owner + "/" + k.Name))
	return int(h.Sum32() & 0x7fffffff)
}

// keypairView is a key pair as Nova shows it: the list's fields, the
// user's on create, and everything on show.
func keypairView(v Microversion, k api.KeyPair, full, user bool) map[string]any {
	out := map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
	if user || full {
		out["user_id"] = k.Owner
	}
	if full {
		out["deleted"], out["id"] = false, keypairID(k)
		out["created_at"] = k.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000")
		out["updated_at"], out["deleted_at"] = nil, nil
	}
	if v.AtLeast(2) {
		out["type"] = k.Type
	}
	return out
}

// keypairNotFound is Nova's 404 for a key pair, without the user Nova
// names: every caller's missing key pair reads the same.
func keypairNotFound(name string) error {
	return errs.NotFound("Keypair %s not found; list your key pairs with: openstack keypair list", name)
}

// listKeypairs is GET /os-keypairs: the caller's key pairs by name (an
// admin's user_id: that user's), paged from 2.35.
func (a *API) listKeypairs(w http.ResponseWriter, r *http.Request, v Microversion) {
	q := r.URL.Query()
	owner, err := keypairOwner(r, v, q.Get("user_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	ks, err := a.Svc.KeyPairs(r.Context(), owner)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	limit := -1
	if v.AtLeast(35) {
		if m := q.Get("marker"); m != "" {
			i := slices.IndexFunc(ks, func(k api.KeyPair) bool { return k.Name == m })
			if i < 0 {
				WriteError(w, r, errs.Invalid("marker [%s] not found", m))
				return
			}
			ks = ks[i+1:]
		}
		if _, given := q["limit"]; given {
			if limit, err = queryInt(q, "limit"); err != nil {
				WriteError(w, r, err)
				return
			}
		}
	}
	if limit >= 0 && limit < len(ks) {
		ks = ks[:limit]
	}
	out := []map[string]any{}
	for _, k := range ks {
		out = append(out, map[string]any{"keypair": keypairView(v, k, false, false)})
	}
	body := map[string]any{"keypairs": out}
	if limit > 0 && len(ks) == limit {
		next := *r.URL
		nq := next.Query()
		nq.Set("marker", ks[len(ks)-1].Name)
		next.RawQuery = nq.Encode()
		body["keypairs_links"] = []map[string]string{{"rel": "next", "href": baseURL(r) + next.RequestURI()}}
	}
	writeJSON(w, http.StatusOK, body)
}

// createKeypair is POST /os-keypairs: import public_key, or without one
// generate a key pair (its private_key in this reply only).
func (a *API) createKeypair(w http.ResponseWriter, r *http.Request, v Microversion) {
	var body struct {
		Keypair struct {
			Name      string  `json:"name"`
			PublicKey *string `json:"public_key"`
			Type      string  `json:"type"`
			UserID    string  `json:"user_id"`
		} `json:"keypair"`
	}
	if err := decode(r, &body); err != nil {
		WriteError(w, r, err)
		return
	}
	kp := body.Keypair
	switch {
	case kp.Type != "" && kp.Type != api.KeyPairSSH:
		WriteError(w, r, errs.Invalid("key pair type %q is not served: godwit keeps ssh key pairs only (no x509 certificates)", kp.Type))
		return
	case kp.PublicKey != nil && strings.TrimSpace(*kp.PublicKey) == "":
		WriteError(w, r, errs.Invalid("Keypair data is invalid: public_key is empty; give an OpenSSH public key, or leave public_key out to have one generated"))
		return
	}
	owner, err := keypairOwner(r, v, kp.UserID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	req := api.CreateKeyPairRequest{Name: kp.Name, Owner: owner}
	if kp.PublicKey != nil {
		req.PublicKey = *kp.PublicKey
	}
	k, err := a.Svc.CreateKeyPair(r.Context(), auth.From(r.Context()), owner, req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	view := keypairView(v, k.KeyPair, false, true)
	if k.PrivateKey != "" {
		view["private_key"] = k.PrivateKey
	}
	status := http.StatusOK
	if v.AtLeast(2) {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"keypair": view})
}

// showKeypair is GET /os-keypairs/{keypair_name}.
func (a *API) showKeypair(w http.ResponseWriter, r *http.Request, v Microversion) {
	owner, err := keypairOwner(r, v, r.URL.Query().Get("user_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	name := r.PathValue("keypair_name")
	k, err := a.Svc.KeyPair(r.Context(), owner, name)
	if errs.Code(err) == api.CodeNotFound {
		err = keypairNotFound(name)
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keypair": keypairView(v, k, true, true)})
}

// deleteKeypair is DELETE /os-keypairs/{keypair_name}: the servers made
// with it keep its key, as in Nova.
func (a *API) deleteKeypair(w http.ResponseWriter, r *http.Request, v Microversion) {
	owner, err := keypairOwner(r, v, r.URL.Query().Get("user_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	name := r.PathValue("keypair_name")
	if err := a.Svc.DeleteKeyPair(r.Context(), owner, name); err != nil {
		if errs.Code(err) == api.CodeNotFound {
			err = keypairNotFound(name)
		}
		WriteError(w, r, err)
		return
	}
	if v.AtLeast(2) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

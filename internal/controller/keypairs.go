package controller

import (
	"context"
	"net/http"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/service"
)

// keyPairRoutes are the routes of key pairs: each is a token's, and a
// member reaches only its own (the handler: service.KeyPairOwner); an
// admin lists every token's, and names another's with ?owner=.
func (c *Controller) keyPairRoutes(m routes) {
	s := c.svc
	owner := func(ctx context.Context, r *http.Request, list bool) (string, error) {
		return service.KeyPairOwner(auth.From(ctx), r.URL.Query().Get("owner"), list)
	}
	m.HandleFunc("GET /v1/keypairs", get(c, func(ctx context.Context, r *http.Request) ([]api.KeyPair, error) {
		o, err := owner(ctx, r, true)
		if err != nil {
			return nil, err
		}
		return s.KeyPairs(ctx, o)
	}))
	m.HandleFunc("GET /v1/keypairs/{name}", get(c, func(ctx context.Context, r *http.Request) (api.KeyPair, error) {
		o, err := owner(ctx, r, false)
		if err != nil {
			return api.KeyPair{}, err
		}
		return s.KeyPair(ctx, o, r.PathValue("name"))
	}))
	m.HandleFunc("POST /v1/keypairs", call(c, required, http.StatusCreated, func(ctx context.Context, r *http.Request, req api.CreateKeyPairRequest) (api.CreatedKeyPair, error) {
		p := auth.From(ctx)
		o, err := service.KeyPairOwner(p, req.Owner, false)
		if err != nil {
			return api.CreatedKeyPair{}, err
		}
		return s.CreateKeyPair(ctx, p, o, req)
	}))
	m.HandleFunc("DELETE /v1/keypairs/{name}", func(w http.ResponseWriter, r *http.Request) {
		o, err := owner(r.Context(), r, false)
		if err == nil {
			err = s.DeleteKeyPair(r.Context(), o, r.PathValue("name"))
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

package api

import (
	"context"
	"net/http"
	"net/url"
)

// JoinTokenRequest asks for a host's join token (POST
// /v1/hosts/{name}/join-token). Controller is the URL the host reaches
// the controller at; default: the one the request came to.
type JoinTokenRequest struct {
	Controller string `json:"controller,omitempty"`
}

// JoinToken is a one-time token with which a host gets its certificate
// (godwit agent --join), good for ExpiresIn.
type JoinToken struct {
	Token     string `json:"token"`
	ExpiresIn string `json:"expires_in"`
}

// Revocation says how many certificates a host revocation revoked.
type Revocation struct {
	Revoked int `json:"revoked"`
}

// JoinToken makes a join token for host name in a cluster with a CA.
func (c *Client) JoinToken(ctx context.Context, name string, req JoinTokenRequest) (JoinToken, error) {
	var t JoinToken
	err := c.Do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(name)+"/join-token", req, &t)
	return t, err
}

// RevokeHost revokes every certificate of host name: the controller
// refuses it until it joins again.
func (c *Client) RevokeHost(ctx context.Context, name string) (Revocation, error) {
	var r Revocation
	err := c.Do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(name)+"/revoke", struct{}{}, &r)
	return r, err
}

package api

import (
	"context"
	"net/http"
	"net/url"
)

// MigratePlan returns what a migrate request would do (a dry run): an
// Intent in state planned. Nothing changes.
func (c *Client) MigratePlan(ctx context.Context, vm string, req MigrateRequest) (Intent, error) {
	req.DryRun = true
	var in Intent
	err := c.Do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(vm)+"/migrate", req, &in)
	return in, err
}

// Drain starts moving every VM off a host (or, with DryRun, returns the
// plan). The host leaves scheduling at once.
func (c *Client) Drain(ctx context.Context, host string, req DrainRequest) (Intent, error) {
	var in Intent
	err := c.Do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/drain", req, &in)
	return in, err
}

// Evacuate rebuilds every VM of a down host on other hosts (or, with
// DryRun, returns the plan).
func (c *Client) Evacuate(ctx context.Context, host string, req EvacuateRequest) (Intent, error) {
	var in Intent
	err := c.Do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/evacuate", req, &in)
	return in, err
}

// Resize changes a VM's vCPUs, memory or disk (or, with DryRun, returns
// the plan).
func (c *Client) Resize(ctx context.Context, vm string, req ResizeRequest) (Intent, error) {
	var in Intent
	err := c.Do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(vm)+"/resize", req, &in)
	return in, err
}

// Rebuild reimages a VM in place (or, with DryRun, returns the plan).
func (c *Client) Rebuild(ctx context.Context, vm string, req RebuildRequest) (Intent, error) {
	var in Intent
	err := c.Do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(vm)+"/rebuild", req, &in)
	return in, err
}

// Intents lists intents, newest first.
func (c *Client) Intents(ctx context.Context) ([]Intent, error) {
	return c.ListIntents(ctx, IntentFilter{})
}

// IntentFilter narrows GET /v1/intents; a zero field does not.
type IntentFilter struct {
	Target string // about this host or VM
	Active bool   // not yet ended
}

// ListIntents lists the intents f selects, newest first.
func (c *Client) ListIntents(ctx context.Context, f IntentFilter) ([]Intent, error) {
	var ins []Intent
	err := c.Do(ctx, http.MethodGet, "/v1/intents"+queryString("target", f.Target, "active", boolParam(f.Active)), nil, &ins)
	return ins, err
}

// Intent returns one intent with its operations.
func (c *Client) Intent(ctx context.Context, id string) (Intent, error) {
	var in Intent
	err := c.Do(ctx, http.MethodGet, "/v1/intents/"+url.PathEscape(id), nil, &in)
	return in, err
}

// CancelIntent stops an intent from starting new operations; running
// migrations finish, or roll back with AbortRunning.
func (c *Client) CancelIntent(ctx context.Context, id string, req CancelIntentRequest) (Intent, error) {
	var in Intent
	err := c.Do(ctx, http.MethodPost, "/v1/intents/"+url.PathEscape(id)+"/cancel", req, &in)
	return in, err
}

// ConfirmResize ends a held intent (Nova's confirmResize): a resize held
// for confirmation (ResizeRequest.Hold) keeps its new size, a held cold
// migration (MigrateRequest.Hold) leaves the VM where it went. The
// intent ends completed.
func (c *Client) ConfirmResize(ctx context.Context, id string) (Intent, error) {
	var in Intent
	err := c.Do(ctx, http.MethodPost, "/v1/intents/"+url.PathEscape(id)+"/confirm", struct{}{}, &in)
	return in, err
}

// RevertResize takes a held intent back (Nova's revertResize): a held
// resize gets the old sizes and, if it moved the VM, its old host; a
// held cold migration moves the VM back, cold, to its old host. The
// intent runs on (reverting) and ends reverted.
func (c *Client) RevertResize(ctx context.Context, id string) (Intent, error) {
	var in Intent
	err := c.Do(ctx, http.MethodPost, "/v1/intents/"+url.PathEscape(id)+"/revert", struct{}{}, &in)
	return in, err
}

// SetHostEnabled returns a host to scheduling (true) or takes it out
// (false) without moving anything.
func (c *Client) SetHostEnabled(ctx context.Context, host string, enabled bool) (Host, error) {
	action := "disable"
	if enabled {
		action = "enable"
	}
	var h Host
	err := c.Do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/"+action, struct{}{}, &h)
	return h, err
}

package hostapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// Agent is the controller's client for one host agent. It reuses the
// public client's JSON and error handling; errors come back matching the
// sentinels in internal/errs.
type Agent struct {
	c      *api.Client
	stream *http.Client // for the console: no overall timeout
}

// streamHeaderTimeout bounds the wait for a console's reply headers: the
// agent sends them as soon as it has opened the log, then streams.
const streamHeaderTimeout = time.Minute

// NewAgent returns a client for the agent at base URL. Calls that are not
// streams time out after timeout (zero: only their context bounds them).
func NewAgent(base string, timeout time.Duration) *Agent { return NewAgentTLS(base, timeout, nil) }

// NewAgentTLS is NewAgent for an https agent, reached with tlsCfg.
func NewAgentTLS(base string, timeout time.Duration, tlsCfg *tls.Config) *Agent {
	c := api.NewClient(base)
	c.HTTP = api.NewHTTPClient(api.HTTPOptions{Timeout: timeout, TLS: tlsCfg})
	return &Agent{c: c, stream: api.NewHTTPClient(api.HTTPOptions{ResponseHeaderTimeout: streamHeaderTimeout, TLS: tlsCfg})}
}

func (a *Agent) do(ctx context.Context, method, path string, in, out any) error {
	if err := a.c.Do(ctx, method, path, in, out); err != nil {
		if _, ok := err.(*api.Error); ok {
			return errs.FromAPI(err)
		}
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // the transport's error, without the client's words for the controller
		}
		return errs.Unavailable("host agent at %s is unreachable: %v", a.c.BaseURL, err)
	}
	return nil
}

// CreateVM defines, prepares and optionally starts a VM (idempotent).
func (a *Agent) CreateVM(ctx context.Context, req CreateVM) (VMReport, error) {
	var r VMReport
	err := a.do(ctx, http.MethodPut, "/v1/vms/"+url.PathEscape(req.ID), req, &r)
	return r, err
}

// Action runs start or reboot on a VM.
func (a *Agent) Action(ctx context.Context, id, action string) (VMReport, error) {
	var r VMReport
	err := a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(id)+"/"+action, struct{}{}, &r)
	return r, err
}

// Stop powers a VM off.
func (a *Agent) Stop(ctx context.Context, id string, req StopVM) (VMReport, error) {
	var r VMReport
	err := a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(id)+"/stop", req, &r)
	return r, err
}

// DeleteVM stops a VM and removes it with its disk. Deleting a VM the agent
// does not know succeeds.
func (a *Agent) DeleteVM(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, "/v1/vms/"+url.PathEscape(id), nil, nil)
}

// VMs lists what the agent runs.
func (a *Agent) VMs(ctx context.Context) ([]VMReport, error) {
	var rs []VMReport
	err := a.do(ctx, http.MethodGet, "/v1/vms", nil, &rs)
	return rs, err
}

// Console streams a VM's console from offset; follow keeps it open.
func (a *Agent) Console(ctx context.Context, id string, offset int64, follow bool) (io.ReadCloser, error) {
	q := url.Values{"offset": {strconv.FormatInt(offset, 10)}}
	if follow {
		q.Set("follow", "true")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.c.BaseURL+"/v1/vms/"+url.PathEscape(id)+"/console?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.stream.Do(req) // no overall timeout: a followed console is long-lived
	if err != nil {
		return nil, errs.Unavailable("host agent at %s is unreachable: %v", a.c.BaseURL, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("agent console: %s: %s", resp.Status, b)
	}
	return resp.Body, nil
}

// Shutdown asks the agent to exit, stopping its VMs first when stopVMs.
func (a *Agent) Shutdown(ctx context.Context, stopVMs bool) error {
	return a.do(ctx, http.MethodPost, "/v1/shutdown", ShutdownRequest{StopVMs: stopVMs}, nil)
}

// ShutdownRequest is the body of POST /v1/shutdown.
type ShutdownRequest struct {
	StopVMs bool `json:"stop_vms"`
}

// PrepareIncoming defines the VM on the destination and starts it waiting
// for the migration; it returns the URI to migrate to.
func (a *Agent) PrepareIncoming(ctx context.Context, req CreateVM) (IncomingReply, error) {
	var r IncomingReply
	err := a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(req.ID)+"/incoming", req, &r)
	return r, err
}

// MigrateOut starts an outgoing live migration.
func (a *Agent) MigrateOut(ctx context.Context, id string, req MigrateOut) error {
	return a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(id)+"/migrate", req, nil)
}

// MigrationStatus reports an outgoing migration.
func (a *Agent) MigrationStatus(ctx context.Context, id string) (MigrationStatus, error) {
	return a.MigrationStatusWait(ctx, id, 0)
}

// MigrationStatusWait reports an outgoing migration once it has ended, or
// after wait at most: an agent whose driver says when a migration's
// status changes holds the request until then, so that its end is known
// at once. An agent that cannot answers at once.
func (a *Agent) MigrationStatusWait(ctx context.Context, id string, wait time.Duration) (MigrationStatus, error) {
	var st MigrationStatus
	path := "/v1/vms/" + url.PathEscape(id) + "/migration"
	if wait > 0 {
		path += "?" + WaitParam + "=" + strconv.FormatInt(wait.Milliseconds(), 10)
	}
	err := a.do(ctx, http.MethodGet, path, nil, &st)
	return st, err
}

// CancelMigration stops an outgoing migration.
func (a *Agent) CancelMigration(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(id)+"/migrate-cancel", struct{}{}, nil)
}

// SwitchOver is the destination's half of a live migration's
// switch-over, once the source has sent everything: it waits until the
// migrated VM runs there. (Not ForceComplete, the operator's push to a
// migration that does not converge.)
func (a *Agent) SwitchOver(ctx context.Context, id string) (VMReport, error) {
	var r VMReport
	err := a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(id)+"/switch-over", struct{}{}, &r)
	return r, err
}

// Resume runs a VM's guest again on the source of a migration that sent
// everything but whose destination never ran it.
func (a *Agent) Resume(ctx context.Context, id string) (VMReport, error) {
	var r VMReport
	err := a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(id)+"/resume", struct{}{}, &r)
	return r, err
}

// Release stops and forgets a VM, keeping its disk.
func (a *Agent) Release(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(id)+"/release", struct{}{}, nil)
}

// ImportDisk starts copying a VM's disk from its source agent to this one.
func (a *Agent) ImportDisk(ctx context.Context, req ImportDisk) error {
	return a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(req.VM.ID)+"/import", req, nil)
}

// ImportStatus reports a disk import.
func (a *Agent) ImportStatus(ctx context.Context, id string) (ImportStatus, error) {
	var st ImportStatus
	err := a.do(ctx, http.MethodGet, "/v1/vms/"+url.PathEscape(id)+"/import", nil, &st)
	return st, err
}

// DiskChecksum returns the size and SHA-256 of a stopped VM's disk.
func (a *Agent) DiskChecksum(ctx context.Context, id string) (DiskChecksum, error) {
	var d DiskChecksum
	err := a.do(ctx, http.MethodGet, "/v1/vms/"+url.PathEscape(id)+"/disk/sha256", nil, &d)
	return d, err
}

// VM reports one VM.
func (a *Agent) VM(ctx context.Context, id string) (VMReport, error) {
	var r VMReport
	err := a.do(ctx, http.MethodGet, "/v1/vms/"+url.PathEscape(id), nil, &r)
	return r, err
}

// ForceComplete makes an outgoing migration finish; it says how.
func (a *Agent) ForceComplete(ctx context.Context, id string) (string, error) {
	var r struct {
		How string `json:"how"`
	}
	err := a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(id)+"/migrate-complete", struct{}{}, &r)
	return r.How, err
}

// Resize changes a VM's vCPUs, memory or disk: online when it runs (or
// 422 with the reason, nothing changed), in its definition when stopped.
func (a *Agent) Resize(ctx context.Context, id string, req ResizeVM) (ResizeReply, error) {
	var rep ResizeReply
	err := a.do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(id)+"/resize", req, &rep)
	return rep, err
}

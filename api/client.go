package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultServer is where the CLI looks for a controller when neither
// --server nor GODWIT_SERVER says otherwise: godwit up's cluster, which
// serves HTTPS with its own CA.
const DefaultServer = "https://127.0.0.1:7400"

// Client talks to a godwit controller.
type Client struct {
	BaseURL string
	HTTP    *http.Client
	// Token is the API token sent as a bearer token with every request
	// (a cluster with a CA asks for one); empty: none.
	Token string
}

// NewClient returns a client for the controller at base (e.g.
// http://127.0.0.1:7400). Its HTTP client, from NewHTTPClient, has no
// overall timeout, since a followed console and an image upload are
// long-lived; bound calls with their context, or replace HTTP.
func NewClient(base string) *Client {
	return &Client{BaseURL: strings.TrimRight(base, "/"), HTTP: NewHTTPClient(HTTPOptions{})}
}

// Do sends a JSON request and decodes a JSON reply into out (when non-nil).
// Non-2xx replies come back as *Error. Every write (POST, PUT, PATCH,
// DELETE) says Content-Type: application/json, body or not: servers
// refuse writes in other types, which is how they tell a browser's
// cross-site form from a client.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if in != nil || IsWrite(method) {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

// authorize adds the client's token to a request.
func (c *Client) authorize(req *http.Request) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

// IsWrite reports whether method changes something: POST, PUT, PATCH or
// DELETE.
func IsWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func (c *Client) send(req *http.Request, out any) error {
	c.authorize(req)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the godwit controller at %s (is it running? set --server or GODWIT_SERVER): %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode reply to %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(b, e) != nil || e.Message == "" {
		e.Code = CodeInternal
		e.Message = strings.TrimSpace(string(b))
		if e.Message == "" {
			e.Message = resp.Status
		}
	}
	return e
}

// Version returns the controller's version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	err := c.Do(ctx, http.MethodGet, "/v1/version", nil, &v)
	return v, err
}

// Hosts lists hosts.
func (c *Client) Hosts(ctx context.Context) ([]Host, error) {
	var hs []Host
	err := c.Do(ctx, http.MethodGet, "/v1/hosts", nil, &hs)
	return hs, err
}

// Host returns one host.
func (c *Client) Host(ctx context.Context, name string) (Host, error) {
	var h Host
	err := c.Do(ctx, http.MethodGet, "/v1/hosts/"+url.PathEscape(name), nil, &h)
	return h, err
}

// VMs lists VMs.
func (c *Client) VMs(ctx context.Context) ([]VM, error) { return c.ListVMs(ctx, VMFilter{}) }

// VMFilter narrows GET /v1/vms; a zero field does not.
type VMFilter struct {
	Host    string // on this host
	Project string // of this project (a member's list is its own project's)
}

// ListVMs lists the VMs f selects.
func (c *Client) ListVMs(ctx context.Context, f VMFilter) ([]VM, error) {
	var vs []VM
	err := c.Do(ctx, http.MethodGet, "/v1/vms"+queryString("host", f.Host, "project", f.Project), nil, &vs)
	return vs, err
}

// queryString is "?k=v&…" of the pairs with a value, or "".
func queryString(kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// boolParam is a boolean query parameter's value: "true", or "" (absent).
func boolParam(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// VM returns one VM.
func (c *Client) VM(ctx context.Context, name string) (VM, error) {
	var v VM
	err := c.Do(ctx, http.MethodGet, "/v1/vms/"+url.PathEscape(name), nil, &v)
	return v, err
}

// CreateVM creates (and by default starts) a VM.
func (c *Client) CreateVM(ctx context.Context, req CreateVMRequest) (VM, error) {
	var v VM
	err := c.Do(ctx, http.MethodPost, "/v1/vms", req, &v)
	return v, err
}

// UpdateVM changes the fields req gives of a VM's record (its display
// name, its description, its access addresses) and returns the VM.
func (c *Client) UpdateVM(ctx context.Context, name string, req UpdateVMRequest) (VM, error) {
	var v VM
	err := c.Do(ctx, http.MethodPatch, "/v1/vms/"+url.PathEscape(name), req, &v)
	return v, err
}

// VMAction runs start, stop or reboot on a VM.
func (c *Client) VMAction(ctx context.Context, name, action string, req VMActionRequest) (VM, error) {
	var v VM
	err := c.Do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(name)+"/"+action, req, &v)
	return v, err
}

// LockVM locks a VM, with a reason (may be empty).
func (c *Client) LockVM(ctx context.Context, name, reason string) (VM, error) {
	var v VM
	err := c.Do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(name)+"/lock", LockVMRequest{Reason: reason}, &v)
	return v, err
}

// UnlockVM unlocks a VM.
func (c *Client) UnlockVM(ctx context.Context, name string) (VM, error) {
	var v VM
	err := c.Do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(name)+"/unlock", nil, &v)
	return v, err
}

// DeleteVM stops a VM and removes it with its disks.
func (c *Client) DeleteVM(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/vms/"+url.PathEscape(name), nil, nil)
}

// Console returns the VM's serial console log from byte offset on; with
// follow, the stream stays open and delivers new output as it comes.
func (c *Client) Console(ctx context.Context, name string, offset int64, follow bool) (io.ReadCloser, error) {
	q := url.Values{"offset": {strconv.FormatInt(offset, 10)}}
	if follow {
		q.Set("follow", "true")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/v1/vms/"+url.PathEscape(name)+"/console?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	return c.stream(req)
}

// stream sends a request whose reply is not JSON (a console, an event
// stream, metrics) and returns its body; a non-2xx reply is an *Error.
func (c *Client) stream(req *http.Request) (io.ReadCloser, error) {
	c.authorize(req)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the godwit controller at %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp.Body, nil
}

// Images lists images.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var ims []Image
	err := c.Do(ctx, http.MethodGet, "/v1/images", nil, &ims)
	return ims, err
}

// Image returns one image.
func (c *Client) Image(ctx context.Context, name string) (Image, error) {
	var im Image
	err := c.Do(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(name), nil, &im)
	return im, err
}

// DeleteImage removes an image that no VM uses.
func (c *Client) DeleteImage(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/images/"+url.PathEscape(name), nil, nil)
}

// ImportImage uploads an image. files maps a role (RoleKernel, RoleInitrd,
// RoleDisk) to a local file path. The upload is streamed.
func (c *Client) ImportImage(ctx context.Context, meta ImportImageMeta, files map[string]string) (Image, error) {
	for role, p := range files {
		if _, err := os.Stat(p); err != nil {
			return Image{}, fmt.Errorf("%s file: %w", role, err)
		}
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeImageParts(mw, meta, files))
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/v1/images", pr)
	if err != nil {
		return Image{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var im Image
	err = c.send(req, &im)
	pr.Close()
	return im, err
}

func writeImageParts(mw *multipart.Writer, meta ImportImageMeta, files map[string]string) error {
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := mw.WriteField("meta", string(mb)); err != nil {
		return err
	}
	for _, role := range []string{RoleKernel, RoleInitrd, RoleDisk} {
		p, ok := files[role]
		if !ok {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		w, err := mw.CreateFormFile(role, filepath.Base(p))
		if err == nil {
			_, err = io.Copy(w, f)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("upload %s: %w", p, err)
		}
	}
	return mw.Close()
}

// Migrate starts moving a VM; the migration runs on in the controller.
// With req.Hold (cold only) the migration belongs to an intent (its
// Intent field) that awaits confirmation once the VM has moved: confirm
// or revert it with ConfirmResize or RevertResize.
func (c *Client) Migrate(ctx context.Context, vm string, req MigrateRequest) (Migration, error) {
	var m Migration
	err := c.Do(ctx, http.MethodPost, "/v1/vms/"+url.PathEscape(vm)+"/migrate", req, &m)
	return m, err
}

// Migrations lists migrations, newest first; vm narrows them to one VM.
func (c *Client) Migrations(ctx context.Context, vm string) ([]Migration, error) {
	return c.ListMigrations(ctx, MigrationFilter{VM: vm})
}

// MigrationFilter narrows GET /v1/migrations; a zero field does not.
type MigrationFilter struct {
	VM     string // of this VM
	Active bool   // not yet ended
}

// ListMigrations lists the migrations f selects, newest first.
func (c *Client) ListMigrations(ctx context.Context, f MigrationFilter) ([]Migration, error) {
	var ms []Migration
	err := c.Do(ctx, http.MethodGet, "/v1/migrations"+queryString("vm", f.VM, "active", boolParam(f.Active)), nil, &ms)
	return ms, err
}

// Migration returns one migration.
func (c *Client) Migration(ctx context.Context, id string) (Migration, error) {
	var m Migration
	err := c.Do(ctx, http.MethodGet, "/v1/migrations/"+url.PathEscape(id), nil, &m)
	return m, err
}

// AbortMigration cancels a running migration; it rolls back and ends in
// state cancelled.
func (c *Client) AbortMigration(ctx context.Context, id string) (Migration, error) {
	var m Migration
	err := c.Do(ctx, http.MethodPost, "/v1/migrations/"+url.PathEscape(id)+"/abort", struct{}{}, &m)
	return m, err
}

// CompleteMigration forces a running live migration to finish (post-copy
// where allowed, else pausing the guest for the final copy).
func (c *Client) CompleteMigration(ctx context.Context, id string) (Migration, error) {
	var m Migration
	err := c.Do(ctx, http.MethodPost, "/v1/migrations/"+url.PathEscape(id)+"/complete", struct{}{}, &m)
	return m, err
}

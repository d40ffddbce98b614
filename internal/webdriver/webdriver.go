// Package webdriver drives a headless Chromium through ChromeDriver and
// the W3C WebDriver protocol, for the tests of the dashboard that the
// controller serves: open a page, find and click elements, type, run a
// script, take a screenshot, read the browser's console.
//
// It is a small client of the protocol's JSON over HTTP, with the
// standard library only; the browser and ChromeDriver are Debian's
// (packages chromium and chromium-driver). Available says when they are
// not installed, so that tests can skip.
package webdriver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godwit/godwit/api"
)

// Debian's paths of the browser and its driver.
const (
	Chromium     = "/usr/bin/chromium"
	Chromedriver = "/usr/bin/chromedriver"
)

// Available returns why a browser test cannot run here, or "".
func Available() string {
	for _, p := range []string{Chromium, Chromedriver} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Sprintf("%s is not installed (apt-get install chromium chromium-driver; make test installs them)", p)
		}
	}
	return ""
}

// Driver is a running ChromeDriver.
type Driver struct {
	cmd  *exec.Cmd
	url  string
	http *http.Client
	dir  string // the browser's profile
}

// Start runs ChromeDriver on a free loopback port, its output to log
// (nil: discarded), and waits until it is ready. Close stops it.
func Start(ctx context.Context, log io.Writer) (*Driver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "godwit-chromium-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(Chromedriver, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1")
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: Close stops ChromeDriver and every browser
	// process it started, by the group's ID.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start chromedriver: %w", err)
	}
	d := &Driver{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), http: api.NewHTTPClient(api.HTTPOptions{Timeout: 2 * time.Minute}), dir: dir}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st struct {
			Ready bool `json:"ready"`
		}
		if err := d.do(ctx, http.MethodGet, "/status", nil, &st); err == nil && st.Ready {
			return d, nil
		}
		if time.Now().After(deadline) {
			d.Close()
			return nil, errors.New("chromedriver did not become ready in 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops ChromeDriver and the browsers it started, and removes the
// browser's profile.
func (d *Driver) Close() {
	if d.cmd.Process != nil {
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		_ = d.cmd.Wait()
	}
	os.RemoveAll(d.dir)
}

// Session is one browser window.
type Session struct {
	d  *Driver
	id string
}

// NewSession starts a headless Chromium of width × height pixels. It
// accepts the certificate of a cluster's own CA (the controller's), and
// keeps every console message for Log. Chromium runs without its sandbox
// (tests run as root) and without the background connections this
// closed network refuses.
func (d *Driver) NewSession(ctx context.Context, width, height int) (*Session, error) {
	caps := map[string]any{
		"capabilities": map[string]any{"alwaysMatch": map[string]any{
			"browserName":         "chrome",
			"acceptInsecureCerts": true,
			"goog:loggingPrefs":   map[string]string{"browser": "ALL"},
			"goog:chromeOptions": map[string]any{
				"binary": Chromium,
				"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
					"--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
					"--disable-sync", "--disable-extensions", "--user-data-dir=" + d.dir,
					fmt.Sprintf("--window-size=%d,%d", width, height)},
			},
		}},
	}
	var reply struct {
		SessionID string `json:"sessionId"`
	}
	if err := d.do(ctx, http.MethodPost, "/session", caps, &reply); err != nil {
		return nil, fmt.Errorf("new browser session: %w", err)
	}
	return &Session{d: d, id: reply.SessionID}, nil
}

// Close closes the browser.
func (s *Session) Close(ctx context.Context) error {
	return s.d.do(ctx, http.MethodDelete, "/session/"+s.id, nil, nil)
}

func (s *Session) do(ctx context.Context, method, path string, body, out any) error {
	return s.d.do(ctx, method, "/session/"+s.id+path, body, out)
}

// Navigate opens url.
func (s *Session) Navigate(ctx context.Context, url string) error {
	return s.do(ctx, http.MethodPost, "/url", map[string]string{"url": url}, nil)
}

// Element is an element of the page.
type Element struct {
	s  *Session
	id string
}

// elementKey is the W3C name of an element reference's field.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// Find returns the first element matching a CSS selector.
func (s *Session) Find(ctx context.Context, css string) (Element, error) {
	var ref map[string]string
	if err := s.do(ctx, http.MethodPost, "/element", map[string]string{"using": "css selector", "value": css}, &ref); err != nil {
		return Element{}, fmt.Errorf("find %s: %w", css, err)
	}
	return Element{s: s, id: ref[elementKey]}, nil
}

// Click clicks the element.
func (e Element) Click(ctx context.Context) error {
	return e.s.do(ctx, http.MethodPost, "/element/"+e.id+"/click", map[string]any{}, nil)
}

// Type types text into the element.
func (e Element) Type(ctx context.Context, text string) error {
	return e.s.do(ctx, http.MethodPost, "/element/"+e.id+"/value", map[string]string{"text": text}, nil)
}

// Clear empties an input.
func (e Element) Clear(ctx context.Context) error {
	return e.s.do(ctx, http.MethodPost, "/element/"+e.id+"/clear", map[string]any{}, nil)
}

// Text returns the element's rendered text.
func (e Element) Text(ctx context.Context) (string, error) {
	var t string
	err := e.s.do(ctx, http.MethodGet, "/element/"+e.id+"/text", nil, &t)
	return t, err
}

// Exec runs a script's body in the page (arguments as arguments[i]) and
// decodes what it returns into out (nil: ignored).
func (s *Session) Exec(ctx context.Context, out any, script string, args ...any) error {
	if args == nil {
		args = []any{}
	}
	return s.do(ctx, http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": args}, out)
}

// WaitFor polls a script that returns a boolean until it returns true,
// every 100 ms, until timeout; what waits is named in the error.
func (s *Session) WaitFor(ctx context.Context, what string, timeout time.Duration, script string, args ...any) error {
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		err := s.Exec(ctx, &ok, script, args...)
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("waiting %s for %s: %w", timeout, what, err)
			}
			return fmt.Errorf("waiting %s for %s: not yet", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Screenshot returns the window as a PNG.
func (s *Session) Screenshot(ctx context.Context) ([]byte, error) {
	var b64 string
	if err := s.do(ctx, http.MethodGet, "/screenshot", nil, &b64); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(b64)
}

// LogEntry is one message of the browser's console.
type LogEntry struct {
	Level   string `json:"level"` // SEVERE, WARNING, INFO, DEBUG
	Message string `json:"message"`
	Source  string `json:"source"` // javascript, network, console-api, ...
}

// Log returns the console's messages since the last call (ChromeDriver's
// log endpoint: errors thrown, failed requests and console calls).
func (s *Session) Log(ctx context.Context) ([]LogEntry, error) {
	var entries []LogEntry
	err := s.do(ctx, http.MethodPost, "/se/log", map[string]string{"type": "browser"}, &entries)
	return entries, err
}

// Colours counts the distinct colours of a PNG, up to limit: a blank or
// one-colour screenshot has one or two.
func Colours(pngBytes []byte, limit int) (int, error) {
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		return 0, fmt.Errorf("decode screenshot: %w", err)
	}
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= limit {
				return len(seen), nil
			}
		}
	}
	return len(seen), nil
}

// Size returns a PNG's width and height.
func Size(pngBytes []byte) (int, int, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(pngBytes))
	return cfg.Width, cfg.Height, err
}

// do sends one command and decodes its value.
func (d *Driver) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.url+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var reply struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &reply); err != nil {
		return fmt.Errorf("webdriver %s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(reply.Value, &e)
		msg, _, _ := strings.Cut(e.Message, "\n") // the rest is ChromeDriver's stack
		return fmt.Errorf("webdriver %s %s: %s: %s", method, path, e.Error, msg)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(reply.Value, out)
}

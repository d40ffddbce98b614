package webdriver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Page is a test's browser window, each step failing the test at once.
type Page struct {
	T   testing.TB
	Ctx context.Context
	S   *Session
	// Dir keeps the screenshots, named NAME-N-STEP.png in order.
	Dir, Name string
	// Timeout bounds each Wait; 0: 30 s.
	Timeout time.Duration
	n       int
}

// Open starts ChromeDriver and a width × height window for t, both
// stopped when t ends; screenshots go to dir (made if missing).
func Open(t testing.TB, ctx context.Context, dir, name string, width, height int) *Page {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := Start(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	s, err := d.NewSession(ctx, width, height)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return &Page{T: t, Ctx: ctx, S: s, Dir: dir, Name: name}
}

// Do fails the test on err.
func (p *Page) Do(err error) {
	p.T.Helper()
	if err != nil {
		p.T.Fatal(err)
	}
}

// Find returns the first element matching css.
func (p *Page) Find(css string) Element {
	p.T.Helper()
	e, err := p.S.Find(p.Ctx, css)
	p.Do(err)
	return e
}

// Click clicks the element matching css. An element that a page
// replaced between the find and the click is found again, up to three
// times.
func (p *Page) Click(css string) {
	p.T.Helper()
	var err error
	for range 3 {
		if err = p.Find(css).Click(p.Ctx); err == nil || !strings.Contains(err.Error(), "stale element") {
			break
		}
	}
	p.Do(err)
}

// Type types text into the element matching css.
func (p *Page) Type(css, text string) { p.T.Helper(); p.Do(p.Find(css).Type(p.Ctx, text)) }

// Clear empties the input matching css.
func (p *Page) Clear(css string) { p.T.Helper(); p.Do(p.Find(css).Clear(p.Ctx)) }

// Exec runs a script in the page; ExecOut decodes what it returns.
func (p *Page) Exec(script string) { p.T.Helper(); p.Do(p.S.Exec(p.Ctx, nil, script)) }

// ExecOut runs a script in the page and decodes what it returns into out.
func (p *Page) ExecOut(out any, script string) { p.T.Helper(); p.Do(p.S.Exec(p.Ctx, out, script)) }

// Text is the rendered text of the element matching css.
func (p *Page) Text(css string) string {
	p.T.Helper()
	s, err := p.Find(css).Text(p.Ctx)
	p.Do(err)
	return s
}

// Wait waits until script returns true; on a timeout it saves a
// screenshot ("failed") and fails the test.
func (p *Page) Wait(what, script string) {
	p.T.Helper()
	d := p.Timeout
	if d == 0 {
		d = 30 * time.Second
	}
	if err := p.S.WaitFor(p.Ctx, what, d, script); err != nil {
		p.Shot("failed")
		p.T.Fatal(err)
	}
}

// Shot saves a screenshot as NAME-N-STEP.png and checks it has content:
// the page's colours, not one blank fill. It returns the file's path.
func (p *Page) Shot(step string) string {
	p.T.Helper()
	b, err := p.S.Screenshot(p.Ctx)
	p.Do(err)
	p.n++
	path := filepath.Join(p.Dir, fmt.Sprintf("%s-%d-%s.png", p.Name, p.n, step))
	p.Do(os.WriteFile(path, b, 0o644))
	if n, err := Colours(b, 64); err != nil || n < 64 {
		p.T.Errorf("screenshot %s has %d colours (%v): it is blank", path, n, err)
	}
	return path
}

// ConsoleErrors fails the test on each error in the browser's console
// since the last call, but those containing expected (when not "").
func (p *Page) ConsoleErrors(step, expected string) {
	p.T.Helper()
	logs, err := p.S.Log(p.Ctx)
	p.Do(err)
	for _, l := range logs {
		if l.Level == "SEVERE" && (expected == "" || !strings.Contains(l.Message, expected)) {
			p.T.Errorf("console error during %s: %s", step, l.Message)
		}
	}
}

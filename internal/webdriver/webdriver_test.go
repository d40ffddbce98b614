package webdriver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const page = `<!doctype html><html><body style="background:#fff">
<h1 id="title">hello</h1><input id="in"><button id="b" onclick="document.getElementById('title').textContent = document.getElementById('in').value">go</button>
<div style="width:200px;height:100px;background:linear-gradient(90deg,#f00,#00f)"></div>
<script>console.error("planted error")</script></body></html>`

// The client drives Debian's Chromium: it types, clicks, reads text,
// runs scripts, takes a non-blank screenshot, and sees a console error.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	if why := Available(); why != "" {
		t.Skip(why)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, page) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := Start(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := d.NewSession(ctx, 800, 600)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if err := s.Navigate(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}
	in, err := s.Find(ctx, "#in")
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Type(ctx, "typed"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Find(ctx, "#b")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Click(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitFor(ctx, "the title", 5*time.Second, `return document.getElementById("title").textContent === arguments[0]`, "typed"); err != nil {
		t.Fatal(err)
	}
	title, _ := s.Find(ctx, "#title")
	if txt, err := title.Text(ctx); err != nil || txt != "typed" {
		t.Errorf("title %q, %v", txt, err)
	}
	if _, err := s.Find(ctx, "#nothing"); err == nil || !strings.Contains(err.Error(), "no such element") {
		t.Errorf("finding a missing element: %v", err)
	}
	png, err := s.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w, h, err := Size(png); err != nil || w != 800 || h < 400 {
		t.Errorf("screenshot %d×%d, %v", w, h, err)
	}
	if n, err := Colours(png, 50); err != nil || n < 50 {
		t.Errorf("screenshot has %d colours (%v): the gradient is missing", n, err)
	}
	logs, err := s.Log(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range logs {
		found = found || (l.Level == "SEVERE" && strings.Contains(l.Message, "planted error"))
	}
	if !found {
		t.Errorf("the console's error is not in the log: %+v", logs)
	}
}

package layers_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The one place each kind of HTTP endpoint is made, so that TLS and
// authentication are added once: clients and transports in
// api.NewHTTPClient, servers in httpx.Serve.
const (
	clientFile = "api/httpclient.go"
	serverFile = "internal/httpx/httpx.go"
)

// httpBuilders maps what non-test code must not use from net/http,
// outside its one place, to that place. Types are caught when built
// (composite literal, new, or a declared value); functions and variables
// when named at all.
var httpBuilders = map[string]string{
	"Client":            clientFile, // type
	"Transport":         clientFile, // type
	"DefaultClient":     clientFile,
	"DefaultTransport":  clientFile,
	"Get":               clientFile,
	"Post":              clientFile,
	"PostForm":          clientFile,
	"Head":              clientFile,
	"Server":            serverFile, // type
	"ListenAndServe":    serverFile,
	"ListenAndServeTLS": serverFile,
	"Serve":             serverFile,
	"ServeTLS":          serverFile,
}

// httpTypes are the names in httpBuilders that are types: naming them is
// fine (a *http.Client field), building one is not.
var httpTypes = map[string]bool{"Client": true, "Transport": true, "Server": true}

// TestOneHTTPClientAndServer fails on any HTTP client, transport or server
// built in non-test code outside api.NewHTTPClient and httpx.Serve. Test
// files are not read: tests may use httptest and plain clients freely.
func TestOneHTTPClientAndServer(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root is not at %s: %v", root, err)
	}
	fset := token.NewFileSet()
	files := 0
	var bad []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "node_modules" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parse %s: %w", rel, err)
		}
		files++
		bad = append(bad, httpViolations(fset, rel, f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("read only %d Go files under %s: the walk is broken", files, root)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// httpViolations lists the uses of httpBuilders in f (at path rel, relative
// to the module) outside their allowed file.
func httpViolations(fset *token.FileSet, rel string, f *ast.File) []string {
	var bad []string
	report := func(n ast.Node, what, name string) {
		if httpBuilders[name] == rel {
			return
		}
		bad = append(bad, fmt.Sprintf("%s:%d: %s: use %s", rel, fset.Position(n.Pos()).Line, what, place(httpBuilders[name])))
	}
	pkg := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != "net/http" {
			continue
		}
		pkg = "http"
		if imp.Name != nil {
			pkg = imp.Name.Name
		}
	}
	switch pkg {
	case "", "_":
		return nil
	case ".":
		return []string{rel + ": imports net/http with a dot, which hides its clients and servers from this test"}
	}
	// name returns the net/http name e refers to, if it is one of
	// httpBuilders.
	name := func(e ast.Expr) string {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return ""
		}
		if id, ok := sel.X.(*ast.Ident); !ok || id.Name != pkg {
			return ""
		}
		if _, ok := httpBuilders[sel.Sel.Name]; !ok {
			return ""
		}
		return sel.Sel.Name
	}
	built := map[ast.Expr]bool{} // type expressions already reported as built
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if nm := name(n.Type); httpTypes[nm] {
				report(n, "builds an http."+nm, nm)
				built[n.Type] = true
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "new" && len(n.Args) == 1 {
				if nm := name(n.Args[0]); httpTypes[nm] {
					report(n, "builds an http."+nm, nm)
					built[n.Args[0]] = true
				}
			}
		case *ast.ValueSpec: // var c http.Client: a zero value is a usable client
			if nm := name(n.Type); httpTypes[nm] {
				report(n, "declares an http."+nm+" value", nm)
				built[n.Type] = true
			}
		case *ast.SelectorExpr:
			if nm := name(n); nm != "" && !httpTypes[nm] && !built[n] {
				report(n, "uses http."+nm, nm)
			}
		}
		return true
	})
	return bad
}

// place names the allowed file's constructor for a message.
func place(file string) string {
	if file == clientFile {
		return "api.NewHTTPClient (" + clientFile + ")"
	}
	return "httpx.Serve (" + serverFile + ")"
}

// The scan catches each way of building a client or server, under any
// import name, and passes comments, types named as types, the allowed
// files, and files that do not import net/http.
func TestHTTPViolations(t *testing.T) {
	const src = `package p

import web "net/http"

// A comment naming http.DefaultClient and &http.Client{} is fine.
type T struct {
	C *web.Client
	S *web.Server
}

var zero web.Client

func f() {
	_ = &web.Client{Timeout: 1}
	_ = web.Transport{}
	_ = new(web.Server)
	_, _ = web.DefaultClient.Do(nil)
	_, _ = web.Get("x")
	_, _ = web.Post("x", "", nil)
	_ = web.ListenAndServe(":1", nil)
	_ = web.Serve(nil, nil)
	_ = web.ServeContent
	_ = web.MethodGet
}
`
	parse := func(src string) (*token.FileSet, *ast.File) {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "p.go", src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		return fset, f
	}
	fset, f := parse(src)
	got := httpViolations(fset, "internal/p/p.go", f)
	c, s := "use api.NewHTTPClient (api/httpclient.go)", "use httpx.Serve (internal/httpx/httpx.go)"
	want := []string{
		"internal/p/p.go:11: declares an http.Client value: " + c,
		"internal/p/p.go:14: builds an http.Client: " + c,
		"internal/p/p.go:15: builds an http.Transport: " + c,
		"internal/p/p.go:16: builds an http.Server: " + s,
		"internal/p/p.go:17: uses http.DefaultClient: " + c,
		"internal/p/p.go:18: uses http.Get: " + c,
		"internal/p/p.go:19: uses http.Post: " + c,
		"internal/p/p.go:20: uses http.ListenAndServe: " + s,
		"internal/p/p.go:21: uses http.Serve: " + s,
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// In the client's own file only the server uses are wrong.
	got = httpViolations(fset, clientFile, f)
	sort.Strings(got)
	if len(got) != 3 || !strings.Contains(strings.Join(got, "\n"), "http.Server") {
		t.Errorf("in %s: %q, want only the three server uses", clientFile, got)
	}

	fset, f = parse("package p\n\nfunc f() { _ = http.DefaultClient }\n")
	if got := httpViolations(fset, "p.go", f); len(got) != 0 {
		t.Errorf("a file without net/http: %q, want none", got)
	}
}

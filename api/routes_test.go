package api

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The route table is well formed: each pattern and operation ID once,
// each route with its replies, and a body type for each JSON body.
func TestRoutesTable(t *testing.T) {
	patterns, ids := map[string]bool{}, map[string]bool{}
	mux := http.NewServeMux()
	for _, r := range Routes {
		p := r.Pattern()
		if patterns[p] || ids[r.ID] {
			t.Errorf("%s (%s) is in the table twice", p, r.ID)
		}
		patterns[p], ids[r.ID] = true, true
		mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {}) // panics on a malformed pattern
		if r.ID == "" || r.Summary == "" {
			t.Errorf("%s has no ID or summary", p)
		}
		if !r.Internal && len(r.Responses) == 0 {
			t.Errorf("%s has no replies", p)
		}
		for _, b := range append([]*Body{r.Request}, bodies(r.Responses)...) {
			if b != nil && (b.Media == "" || b.Media == MediaJSON) && b.Type == nil {
				t.Errorf("%s: a JSON body without its type", p)
			}
		}
	}
}

func bodies(rs []Response) []*Body {
	var out []*Body
	for _, r := range rs {
		out = append(out, r.Body)
	}
	return out
}

// Every public route is called by some method of Client, and every
// method calls routes of the table: each exported method is called
// with zero arguments (names and IDs "x", each bool both ways) against
// a server that records the pattern each request matched.
func TestClientCoversEveryRoute(t *testing.T) {
	var mu sync.Mutex
	var hit []string
	var stray []string
	mux := http.NewServeMux()
	for _, r := range Routes {
		mux.HandleFunc(r.Pattern(), func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			mu.Lock()
			hit = append(hit, r.Pattern())
			for k := range req.URL.Query() {
				hit = append(hit, r.Pattern()+"?"+k)
			}
			mu.Unlock()
			reply(w, r)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		stray = append(stray, req.Method+" "+req.URL.Path)
		mu.Unlock()
		http.NotFound(w, req)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := NewClient(srv.URL)

	calledBy := map[string][]string{} // pattern → methods
	ct := reflect.TypeOf(c)
	for i := range ct.NumMethod() {
		m := ct.Method(i)
		if m.Name == "Do" { // the generic call the others are made of
			continue
		}
		mu.Lock()
		hit, stray = nil, nil
		mu.Unlock()
		for _, args := range argSets(t, m.Type) {
			out := reflect.ValueOf(c).Method(i).Call(args)
			for _, o := range out {
				if rc, ok := o.Interface().(io.ReadCloser); ok && rc != nil {
					rc.Close()
				}
				if es, ok := o.Interface().(*EventStream); ok && es != nil {
					es.Close()
					for range es.C { // until its reader has stopped
					}
				}
				if err, ok := o.Interface().(error); ok && err != nil {
					var vals []any
					for _, a := range args[1:] {
						vals = append(vals, a.Interface())
					}
					t.Errorf("Client.%s%v: %v", m.Name, vals, err)
				}
			}
		}
		mu.Lock()
		hit, stray := slices.Clone(hit), slices.Clone(stray)
		mu.Unlock()
		if len(stray) > 0 {
			t.Errorf("Client.%s calls %v, which is no route of the table", m.Name, stray)
		}
		if !slices.ContainsFunc(hit, func(p string) bool { return !strings.Contains(p, "?") }) && len(stray) == 0 {
			t.Errorf("Client.%s calls no route", m.Name)
		}
		for _, p := range hit {
			calledBy[p] = append(calledBy[p], m.Name)
		}
	}
	documented := map[string]bool{}
	for _, r := range Routes {
		for _, p := range r.Params {
			documented[r.Pattern()+"?"+p.Name] = true
		}
	}
	for q, ms := range calledBy {
		if strings.Contains(q, "?") && !documented[q] {
			t.Errorf("Client.%v sends query parameter %s, which api.Routes does not document", ms, q)
		}
	}
	var missing []string
	for _, r := range Routes {
		for _, p := range r.Params {
			if q := r.Pattern() + "?" + p.Name; p.In == "query" && len(calledBy[q]) == 0 {
				missing = append(missing, q)
			}
		}
		switch {
		case r.Internal && len(calledBy[r.Pattern()]) > 0:
			t.Errorf("%s is internal (for agents), and Client.%v calls it", r.Pattern(), calledBy[r.Pattern()])
		case !r.Internal && len(calledBy[r.Pattern()]) == 0:
			missing = append(missing, r.Pattern())
		}
	}
	if len(missing) > 0 {
		t.Errorf("no Client method calls these routes (or sends these query parameters); add one each:\n%s", strings.Join(missing, "\n"))
	}
}

// reply answers a recorded request with the route's first reply, with a
// body the client can decode.
func reply(w http.ResponseWriter, r Route) {
	status := http.StatusOK
	var b *Body
	if len(r.Responses) > 0 {
		status, b = r.Responses[0].Status, r.Responses[0].Body
	}
	body := ""
	if b != nil && b.Type != nil {
		body = "{}"
		if reflect.TypeOf(b.Type).Kind() == reflect.Slice {
			body = "[]"
		}
		w.Header().Set("Content-Type", MediaJSON)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// argSets are the calls to make of a method of type mt (its receiver
// first): a context, "x" for strings, zero values, and every bool both
// ways.
func argSets(t *testing.T, mt reflect.Type) [][]reflect.Value {
	sets := [][]reflect.Value{nil}
	for i := 1; i < mt.NumIn(); i++ {
		in := mt.In(i)
		var choices []reflect.Value
		switch {
		case in == reflect.TypeFor[context.Context]():
			choices = []reflect.Value{reflect.ValueOf(context.Background())}
		case in.Kind() == reflect.String:
			choices = []reflect.Value{reflect.ValueOf("x").Convert(in)}
		case in.Kind() == reflect.Bool:
			choices = []reflect.Value{reflect.ValueOf(false), reflect.ValueOf(true)}
		case in.Kind() == reflect.Interface:
			t.Fatalf("a method takes an interface %s: teach the test what to pass", in)
		case in.Kind() == reflect.Struct:
			choices = []reflect.Value{reflect.Zero(in), filled(in)}
		default:
			choices = []reflect.Value{reflect.Zero(in)}
		}
		var next [][]reflect.Value
		for _, s := range sets {
			for _, c := range choices {
				next = append(next, append(slices.Clone(s), c))
			}
		}
		sets = next
	}
	return sets
}

// filled is a value of struct type t with its fields of plain kinds set
// ("x", ["x"], true, 1, now), so that a filter sends every query
// parameter.
func filled(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	for i := range t.NumField() {
		f := v.Field(i)
		switch {
		case !t.Field(i).IsExported():
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Now()))
		case f.Kind() == reflect.String:
			f.SetString("x")
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.Append(f, reflect.ValueOf("x").Convert(f.Type().Elem())))
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.CanInt():
			f.SetInt(1)
		}
	}
	return v
}

// Each closed set of Enumerations lists every constant of its type in
// this package, read from the source: a new state or kind is not left
// out of the OpenAPI document's enum.
func TestEnumerationsComplete(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string][]string{} // type name → constant names
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				typ := ""
				if id, ok := vs.Type.(*ast.Ident); ok {
					typ = id.Name
				} else if len(vs.Values) == 1 {
					// OpLive = OperationKind(KindLive)
					if call, ok := vs.Values[0].(*ast.CallExpr); ok {
						if id, ok := call.Fun.(*ast.Ident); ok {
							typ = id.Name
						}
					}
				}
				for _, n := range vs.Names {
					consts[typ] = append(consts[typ], n.Name)
				}
			}
		}
	}
	for _, e := range Enumerations() {
		v := reflect.ValueOf(e)
		typ := v.Type().Elem().Name()
		var listed []string
		seen := map[string]bool{}
		for i := range v.Len() {
			s := v.Index(i).String()
			if seen[s] {
				t.Errorf("%s %q is listed twice", typ, s)
			}
			seen[s] = true
			listed = append(listed, s)
		}
		if len(consts[typ]) != len(listed) {
			sort.Strings(listed)
			t.Errorf("%s has %d constants %v, and its list %d values %v", typ, len(consts[typ]), consts[typ], len(listed), listed)
		}
	}
}

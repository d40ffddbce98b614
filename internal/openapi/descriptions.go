package openapi

import (
	_ "embed"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Descriptions are the doc comments of package api's types and of their
// fields, by Go name: "Host" and "Host.Address". The document gives them
// as descriptions, and a comment that starts "Deprecated:" marks its
// field deprecated.
//
// They are read from the source by go generate (ReadDescriptions) into
// descriptions.json and embedded, because the controller makes the
// document at run time, where there is no source to read; a test fails
// when the file is stale.
type Descriptions map[string]string

//go:generate go run ./gen -descriptions descriptions.json ../../api

//go:embed descriptions.json
var embedded []byte

// Embedded returns the descriptions committed with the code.
var Embedded = sync.OnceValue(func() Descriptions {
	var d Descriptions
	if err := json.Unmarshal(embedded, &d); err != nil {
		panic("openapi: descriptions.json: " + err.Error()) // a test reads it first
	}
	return d
})

// ReadDescriptions reads the doc comments of the types and fields
// declared in the Go files of dir (package api), tests left out.
func ReadDescriptions(dir string) (Descriptions, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	d := Descriptions{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, decl := range af.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if !ts.Name.IsExported() {
					continue
				}
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				d.add(ts.Name.Name, doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					doc := fld.Doc
					if doc == nil {
						doc = fld.Comment
					}
					for _, n := range fld.Names {
						d.add(ts.Name.Name+"."+n.Name, doc)
					}
				}
			}
		}
	}
	return d, nil
}

// add records a comment's text, its lines joined into paragraphs.
func (d Descriptions) add(key string, c *ast.CommentGroup) {
	if c == nil {
		return
	}
	var paras []string
	for p := range strings.SplitSeq(strings.TrimSpace(c.Text()), "\n\n") {
		paras = append(paras, strings.Join(strings.Fields(p), " "))
	}
	if s := strings.Join(paras, "\n\n"); s != "" {
		d[key] = s
	}
}

// WriteDescriptions writes d as descriptions.json holds it.
func WriteDescriptions(path string, d Descriptions) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// described adds a description (and deprecated, for a comment that says
// so) to schema s; a reference is wrapped in allOf, since OpenAPI 3.0
// ignores what stands beside a $ref.
func described(s *object, desc string) *object {
	if desc == "" {
		return s
	}
	if s.get("$ref") != nil {
		s = obj("allOf", []any{s})
	}
	s.set("description", desc)
	if strings.HasPrefix(desc, "Deprecated:") {
		s.set("deprecated", true)
	}
	return s
}

package httpxtest

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const httpxPath = "github.com/godwit/godwit/internal/httpx"

// DecodedTypes lists the request body types the package in dir decodes:
// the type of every value its non-test files hand httpx.Decode or
// httpx.DecodeBytes and, where that is a type parameter (the controller's
// generic handlers), every type argument it is instantiated with,
// followed up through generic callers. Empty structs (routes without a
// body) are left out. The package is type-checked against the export
// data of `go list -export`, so a handler added in any form is seen.
func DecodedTypes(t testing.TB, dir string) []string {
	t.Helper()
	out := goList(t, dir, "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \"\\t\"}}")
	fields := strings.Split(strings.TrimSpace(out), "\t")
	path, pdir := fields[0], fields[1]
	exports := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(goList(t, dir, "-export", "-deps", "{{.ImportPath}}\t{{.Export}}")), "\n") {
		p, f, _ := strings.Cut(l, "\t")
		exports[p] = f
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range fields[2:] {
		f, err := parser.ParseFile(fset, filepath.Join(pdir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{},
		Instances: map[*ast.Ident]types.Instance{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", func(p string) (io.ReadCloser, error) { return os.Open(exports[p]) })}
	if _, err := conf.Check(path, fset, files, info); err != nil {
		t.Fatalf("type-check %s: %v", path, err)
	}

	decoded := map[string]bool{}
	params := map[*types.TypeParam]bool{} // type parameters that reach a decode
	add := func(typ types.Type) bool {
		if tp, ok := typ.(*types.TypeParam); ok {
			if params[tp] {
				return false
			}
			params[tp] = true
			return true
		}
		if s, ok := typ.Underlying().(*types.Struct); !ok || s.NumFields() > 0 {
			decoded[typ.String()] = true
		}
		return false
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if fn, ok := info.Uses[sel.Sel].(*types.Func); ok && fn.Pkg() != nil && fn.Pkg().Path() == httpxPath &&
				(fn.Name() == "Decode" || fn.Name() == "DecodeBytes") {
				if ptr, ok := info.Types[call.Args[1]].Type.(*types.Pointer); ok {
					add(ptr.Elem())
				} else {
					t.Errorf("%s: httpx.%s into a non-pointer", fset.Position(call.Pos()), fn.Name())
				}
			}
			return true
		})
	}
	for changed := true; changed; {
		changed = false
		for id, inst := range info.Instances {
			fn, ok := info.Uses[id].(*types.Func)
			if !ok {
				continue
			}
			tps := fn.Origin().Type().(*types.Signature).TypeParams()
			for i := range tps.Len() {
				if params[tps.At(i)] && add(inst.TypeArgs.At(i)) {
					changed = true
				}
			}
		}
	}
	list := make([]string, 0, len(decoded))
	for name := range decoded {
		list = append(list, name)
	}
	slices.Sort(list)
	return list
}

func goList(t testing.TB, dir string, args ...string) string {
	t.Helper()
	n := len(args) - 1 // flags, then the format
	args = append(append([]string{"list"}, args[:n]...), "-f", args[n], dir)
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %v: %v", args, err)
	}
	return string(out)
}

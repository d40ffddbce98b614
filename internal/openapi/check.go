package openapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Doc is a parsed OpenAPI document, for the checks.
type Doc map[string]any

// Parse reads a document.
func Parse(b []byte) (Doc, error) {
	var d Doc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return d, nil
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Check lists what is wrong with a document's structure, as far as the
// tests need: the fields OpenAPI requires, every $ref resolves, every
// path parameter declared (and none that is not in the path),
// operationIds unique, every response described, every schema's
// required fields among its properties, every component used.
func Check(d Doc) []string {
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	if v, _ := d["openapi"].(string); !strings.HasPrefix(v, "3.") {
		add("openapi is %q, not a 3.x version", d["openapi"])
	}
	info, _ := d["info"].(map[string]any)
	if s, _ := info["title"].(string); s == "" {
		add("info.title is missing")
	}
	if s, _ := info["version"].(string); s == "" {
		add("info.version is missing")
	}
	paths, ok := d["paths"].(map[string]any)
	if !ok {
		add("paths is missing")
	}
	ids := map[string]string{}
	for _, p := range sortedKeys(paths) {
		if !strings.HasPrefix(p, "/") {
			add("path %s does not start with /", p)
		}
		item, _ := paths[p].(map[string]any)
		for _, m := range sortedKeys(item) {
			if !slices.Contains(methods, m) {
				if m != "parameters" && m != "summary" && m != "description" && !strings.HasPrefix(m, "x-") {
					add("%s: %q is no method", p, m)
				}
				continue
			}
			where := strings.ToUpper(m) + " " + p
			op, _ := item[m].(map[string]any)
			id, _ := op["operationId"].(string)
			switch {
			case id == "":
				add("%s has no operationId", where)
			case ids[id] != "":
				add("%s and %s share operationId %s", ids[id], where, id)
			default:
				ids[id] = where
			}
			declared := map[string]bool{}
			params, _ := op["parameters"].([]any)
			for _, pv := range params {
				prm, _ := resolve(d, pv).(map[string]any)
				name, _ := prm["name"].(string)
				in, _ := prm["in"].(string)
				if name == "" || !slices.Contains([]string{"path", "query", "header", "cookie"}, in) {
					add("%s: parameter %v lacks a name or a place", where, prm)
				}
				if prm["schema"] == nil && prm["content"] == nil {
					add("%s: parameter %s has no schema", where, name)
				}
				if in == "path" {
					if prm["required"] != true {
						add("%s: path parameter %s is not required", where, name)
					}
					declared[name] = true
				}
			}
			inPath := PathParams(p)
			for _, n := range inPath {
				if !declared[n] {
					add("%s: path parameter {%s} is not declared", where, n)
				}
			}
			for n := range declared {
				if !slices.Contains(inPath, n) {
					add("%s: path parameter %s is not in the path", where, n)
				}
			}
			resps, _ := op["responses"].(map[string]any)
			if len(resps) == 0 {
				add("%s has no responses", where)
			}
			for code, rv := range resps {
				r, _ := resolve(d, rv).(map[string]any)
				if s, _ := r["description"].(string); s == "" {
					add("%s: response %s has no description", where, code)
				}
			}
		}
	}
	used := map[string]bool{}
	walk(d, func(m map[string]any) {
		r, ok := m["$ref"].(string)
		if !ok {
			return
		}
		if resolve(d, m) == nil {
			add("$ref %s does not resolve", r)
		}
		used[r] = true
	})
	comps, _ := d["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	for _, name := range sortedKeys(schemas) {
		if !used["#/components/schemas/"+name] {
			add("schema %s is used nowhere", name)
		}
	}
	walk(d, func(m map[string]any) {
		req, ok := m["required"].([]any)
		props, _ := m["properties"].(map[string]any)
		if !ok || m["type"] != "object" {
			return
		}
		for _, r := range req {
			if name, _ := r.(string); props[name] == nil {
				add("required %v is not a property of %v", r, sortedKeys(props))
			}
		}
	})
	return bad
}

// resolve follows a $ref (local ones only) to what it names; v itself
// when it is none, nil when it does not resolve.
func resolve(d Doc, v any) any {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		r, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		ptr, ok := strings.CutPrefix(r, "#/")
		if !ok {
			return nil
		}
		var cur any = map[string]any(d)
		for _, tok := range strings.Split(ptr, "/") {
			tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
			cm, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			if cur, ok = cm[tok]; !ok {
				return nil
			}
		}
		v = cur
	}
	return nil // a loop of references
}

// walk calls f on every object in v.
func walk(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case Doc:
		walk(map[string]any(v), f)
	case map[string]any:
		f(v)
		for _, k := range sortedKeys(v) {
			walk(v[k], f)
		}
	case []any:
		for _, e := range v {
			walk(e, f)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Schema returns the schema of a route's reply: the document's
// operation for method and path, the response with status, its JSON
// content's schema.
func (d Doc) Schema(method, path string, status int) (any, error) {
	paths, _ := d["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	resps, _ := op["responses"].(map[string]any)
	r, _ := resps[fmt.Sprint(status)].(map[string]any)
	content, _ := r["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	if media == nil || media["schema"] == nil {
		return nil, fmt.Errorf("the document has no JSON reply %d to %s %s", status, method, path)
	}
	return media["schema"], nil
}

// Conforms lists where v, a decoded JSON value, breaks schema s of
// document d: a key that is not a property, a required one missing, a
// value of another type or not in its enum. at names v in the messages.
func Conforms(d Doc, s any, v any, at string) []string {
	var bad []string
	conform(d, s, v, at, &bad)
	return bad
}

func conform(d Doc, sv any, v any, at string, bad *[]string) {
	s, _ := resolve(d, sv).(map[string]any)
	if s == nil {
		*bad = append(*bad, at+": its schema does not resolve")
		return
	}
	if v == nil {
		if s["nullable"] != true && len(s) > 0 {
			*bad = append(*bad, at+": null, and the schema does not allow it")
		}
		return
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			conform(d, sub, v, at, bad)
		}
	}
	if alts, ok := s["anyOf"].([]any); ok {
		var first []string
		for i, sub := range alts {
			var b []string
			conform(d, sub, v, at, &b)
			if len(b) == 0 {
				first = nil
				break
			}
			if i == 0 {
				first = b
			}
		}
		*bad = append(*bad, first...)
	}
	if s["type"] == nil && s["enum"] == nil {
		return // anything, or what allOf and anyOf said
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		*bad = append(*bad, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
	}
	typ, _ := s["type"].(string)
	switch v := v.(type) {
	case map[string]any:
		if typ != "object" {
			*bad = append(*bad, fmt.Sprintf("%s: an object, where the schema says %q", at, typ))
			return
		}
		props, _ := s["properties"].(map[string]any)
		extra := s["additionalProperties"]
		for _, k := range sortedKeys(v) {
			switch {
			case props[k] != nil:
				conform(d, props[k], v[k], at+"."+k, bad)
			case extra != nil && extra != false:
				conform(d, extra, v[k], at+"."+k, bad)
			default:
				*bad = append(*bad, fmt.Sprintf("%s: key %q is not a property of its schema", at, k))
			}
		}
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := v[r.(string)]; !ok {
				*bad = append(*bad, fmt.Sprintf("%s: required %q is missing", at, r))
			}
		}
	case []any:
		if typ != "array" {
			*bad = append(*bad, fmt.Sprintf("%s: an array, where the schema says %q", at, typ))
			return
		}
		for i, e := range v {
			conform(d, s["items"], e, fmt.Sprintf("%s[%d]", at, i), bad)
		}
	case string:
		if typ != "string" && typ != "" {
			*bad = append(*bad, fmt.Sprintf("%s: a string, where the schema says %q", at, typ))
		}
	case float64:
		if typ != "number" && typ != "integer" && typ != "" {
			*bad = append(*bad, fmt.Sprintf("%s: a number, where the schema says %q", at, typ))
		}
		if typ == "integer" && v != float64(int64(v)) {
			*bad = append(*bad, fmt.Sprintf("%s: %v is not an integer", at, v))
		}
	case bool:
		if typ != "boolean" && typ != "" {
			*bad = append(*bad, fmt.Sprintf("%s: a boolean, where the schema says %q", at, typ))
		}
	}
}

// Sample returns a value of schema s with every property there, the
// first of each enum, and one item in each array: a request body that
// names every documented field, which a server that decodes another
// type (strictly, as godwit's does) refuses.
func (d Doc) Sample(s any) any { return d.sample(s, 0) }

func (d Doc) sample(sv any, depth int) any {
	s, _ := resolve(d, sv).(map[string]any)
	if s == nil || depth > 8 {
		return nil
	}
	for _, k := range []string{"allOf", "anyOf"} {
		if alts, ok := s[k].([]any); ok && len(alts) > 0 {
			return d.sample(alts[0], depth+1)
		}
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		return enum[0]
	}
	switch s["type"] {
	case "string":
		if s["format"] == "date-time" {
			return "2026-01-02T03:04:05Z"
		}
		return ""
	case "integer", "number":
		return 0
	case "boolean":
		return false
	case "array":
		return []any{d.sample(s["items"], depth+1)}
	case "object":
		out := map[string]any{}
		props, _ := s["properties"].(map[string]any)
		for k, p := range props {
			out[k] = d.sample(p, depth+1)
		}
		return out
	}
	return nil
}

// RequestSchema returns the JSON schema of a route's request body.
func (d Doc) RequestSchema(method, path string) (any, bool) {
	paths, _ := d["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	rb, _ := op["requestBody"].(map[string]any)
	content, _ := rb["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	if media == nil || media["schema"] == nil {
		return nil, false
	}
	return media["schema"], true
}

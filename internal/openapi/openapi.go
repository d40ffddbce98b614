// Package openapi writes the OpenAPI 3 document of godwit's REST API
// from the route table in package api (api.Routes), reflecting over the
// Go types of each route's bodies as encoding/json sees them, so the
// document is the code's and cannot drift from it; and it checks
// documents (Check, Conforms) for the tests that hold it to the server.
//
// The document is built from the types, not from comments, so it needs
// no source at run time: the controller serves the same bytes that
// docs/openapi.json holds.
package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/godwit/godwit/api"
)

// Version is the OpenAPI version the document is written in: 3.0, which
// the most tools read (3.1 changes only how null is written, which 3.0
// says with nullable).
const Version = "3.0.3"

// Access is who may call a route: a role word (anyone, member, admin,
// host) and, for members, how they are kept to their project.
type Access struct {
	Role string
	Note string
}

// Options are what the document needs beyond api.Routes.
type Options struct {
	// Access is who may call each public route, by pattern ("GET
	// /v1/hosts"): the controller's policy table. Every public route
	// must have one.
	Access map[string]Access
	// Enums are the closed sets of the vocabulary (api.Enumerations):
	// slices of string-kinded values.
	Enums []any
	// Descriptions of the types and their fields (Embedded()); nil:
	// none.
	Descriptions Descriptions
}

// Generate returns the document of routes' public routes, indented and
// the same for the same input.
func Generate(routes []api.Route, o Options) ([]byte, error) {
	g := &gen{schemas: &object{}, names: map[string]reflect.Type{}, enums: map[reflect.Type][]string{}, desc: o.Descriptions}
	for _, e := range o.Enums {
		v := reflect.ValueOf(e)
		if v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.String {
			return nil, fmt.Errorf("openapi: enumeration %T is not a slice of a string type", e)
		}
		var vals []string
		for i := range v.Len() {
			vals = append(vals, v.Index(i).String())
		}
		g.enums[v.Type().Elem()] = vals
	}
	paths := &object{}
	for _, rt := range routes {
		if rt.Internal {
			continue
		}
		acc, ok := o.Access[rt.Pattern()]
		if !ok {
			return nil, fmt.Errorf("openapi: no access given for %s", rt.Pattern())
		}
		op, err := g.operation(rt, acc)
		if err != nil {
			return nil, fmt.Errorf("openapi: %s: %w", rt.Pattern(), err)
		}
		item, _ := paths.get(rt.Path).(*object)
		if item == nil {
			item = &object{}
			paths.set(rt.Path, item)
		}
		m := strings.ToLower(rt.Method)
		if item.get(m) != nil {
			return nil, fmt.Errorf("openapi: %s is in the table twice", rt.Pattern())
		}
		item.set(m, op)
	}
	if g.err != nil {
		return nil, g.err
	}
	g.mustSchema(reflect.TypeFor[api.Error]()) // every failure's body
	doc := obj(
		"openapi", Version,
		"info", obj(
			"title", "godwit",
			"version", "v1",
			"description", description,
		),
		"paths", paths,
		"components", obj(
			"schemas", g.schemas,
			"securitySchemes", obj("token", obj(
				"type", "http",
				"scheme", "bearer",
				"description", "An API token (gwt_…), from godwit token create. A cluster without a CA asks for none: every caller is an admin there.",
			)),
		),
		"security", []any{obj("token", []any{})},
	)
	if g.err != nil {
		return nil, g.err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// description is the document's: the conventions every route shares.
const description = `The REST API of a godwit controller. The Go client in package api (github.com/godwit/godwit/api) calls every route.

Conventions: sizes are in MiB, rates in bytes/s, bandwidth caps in MB/s (10^6 bytes); a field in another unit says it in its name (max_downtime_ms). Times are RFC 3339. A schema's required fields are those the server always writes; in a request body an absent field is its zero value, and the server says which are missing. Request bodies are decoded strictly: an unknown field is refused. Every write is sent with Content-Type: application/json (image imports: multipart/form-data).

Every failure answers with an Error body whose code names the kind of failure (invalid, not_found, forbidden, unauthenticated, conflict, no_capacity, ...).

Who may call each route is in x-godwit-access: anyone, member (any valid token, limited to its project) or admin.`

// gen builds schemas, each named type once, in components.
type gen struct {
	schemas *object
	names   map[string]reflect.Type
	enums   map[reflect.Type][]string
	desc    Descriptions
	err     error
}

func (g *gen) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// mustSchema is schema, the error kept for Generate to return.
func (g *gen) mustSchema(t reflect.Type) any {
	s, err := g.schema(t)
	if err != nil {
		g.fail(err)
	}
	return s
}

// operation is one route's OpenAPI operation.
func (g *gen) operation(rt api.Route, acc Access) (*object, error) {
	params, err := g.parameters(rt)
	if err != nil {
		return nil, err
	}
	desc := "Who may call it: " + roleWords[acc.Role]
	if roleWords[acc.Role] == "" {
		return nil, fmt.Errorf("access %q is no role", acc.Role)
	}
	if acc.Note != "" {
		desc += "; " + acc.Note
	}
	op := obj(
		"operationId", rt.ID,
		"summary", rt.Summary,
		"description", desc+".",
		"tags", []any{tag(rt.Path)},
	)
	if len(params) > 0 {
		op.set("parameters", params)
	}
	if rt.Request != nil {
		content, err := g.content(rt.Request)
		if err != nil {
			return nil, err
		}
		op.set("requestBody", obj("required", !rt.Request.Optional, "content", content))
	}
	if len(rt.Responses) == 0 {
		return nil, fmt.Errorf("no responses")
	}
	resps := &object{}
	for _, r := range rt.Responses {
		d := r.Description
		if d == "" {
			d = http.StatusText(r.Status)
		}
		resp := obj("description", d)
		if r.Body != nil {
			content, err := g.content(r.Body)
			if err != nil {
				return nil, err
			}
			resp.set("content", content)
		}
		resps.set(strconv.Itoa(r.Status), resp)
	}
	resps.set("default", obj(
		"description", "a failure: its code and a message that says what to do",
		"content", obj(api.MediaJSON, obj("schema", ref("Error"))),
	))
	op.set("responses", resps)
	if acc.Role == "anyone" {
		op.set("security", []any{}) // no credentials asked
	}
	op.set("x-godwit-access", acc.Role)
	return op, nil
}

// roleWords say who each role of Access is.
var roleWords = map[string]string{
	"anyone": "anyone, without a token",
	"member": "any valid token, a member's or an admin's",
	"admin":  "an admin's token",
	"host":   "a host's certificate, or an admin's token",
}

// tag groups operations by what they are about: the path's first word
// after the version.
func tag(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 2 || parts[0] != "v1" {
		return "meta"
	}
	switch parts[1] {
	case "version", "whoami":
		return "meta"
	case "tokens", "projects", "audit":
		return "access"
	}
	return parts[1]
}

// parameters are a route's path parameters, in the path's order, then
// its query parameters.
func (g *gen) parameters(rt api.Route) ([]any, error) {
	byName := map[string]api.Param{}
	for _, p := range rt.Params {
		byName[p.In+" "+p.Name] = p
	}
	var out []any
	for _, name := range PathParams(rt.Path) {
		p, ok := byName["path "+name]
		if !ok {
			p = api.Param{Name: name, In: "path", Type: ""}
		}
		delete(byName, "path "+name)
		s, err := g.param(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	for _, p := range rt.Params {
		if p.In == "query" {
			delete(byName, "query "+p.Name)
			s, err := g.param(p)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	}
	for k := range byName {
		return nil, fmt.Errorf("parameter %s is not in the path, nor a query parameter", k)
	}
	return out, nil
}

func (g *gen) param(p api.Param) (*object, error) {
	s, err := g.schema(reflect.TypeOf(p.Type))
	if err != nil {
		return nil, err
	}
	if len(p.Enum) > 0 {
		s = obj("type", "string", "enum", strs(p.Enum))
	}
	o := obj("name", p.Name, "in", p.In, "required", p.In == "path")
	if p.Description != "" {
		o.set("description", p.Description)
	}
	o.set("schema", s)
	return o, nil
}

// PathParams are the names of a path's parameters, in order.
func PathParams(path string) []string {
	var names []string
	for rest := path; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return names
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return names
		}
		names = append(names, rest[i+1:i+j])
		rest = rest[i+j+1:]
	}
}

// content is a body's content object: its media type and schema.
func (g *gen) content(b *api.Body) (*object, error) {
	media := b.Media
	if media == "" {
		media = api.MediaJSON
	}
	switch {
	case media == api.MediaMultipart:
		props, enc := &object{}, &object{}
		var required []any
		for _, p := range b.Parts {
			if p.Type == nil {
				props.set(p.Name, obj("type", "string", "format", "binary", "description", p.Description))
				continue
			}
			s, err := g.schema(reflect.TypeOf(p.Type))
			if err != nil {
				return nil, err
			}
			props.set(p.Name, s)
			enc.set(p.Name, obj("contentType", api.MediaJSON))
			required = append(required, p.Name)
		}
		s := obj("type", "object", "properties", props)
		if len(required) > 0 {
			s.set("required", required)
		}
		return obj(media, obj("schema", s, "encoding", enc)), nil
	case b.Type == nil && media == api.MediaText:
		return obj(media, obj("schema", obj("type", "string"))), nil
	case b.Type == nil:
		return obj(media, obj("schema", obj("type", "string", "format", "binary"))), nil
	}
	s, err := g.schema(reflect.TypeOf(b.Type))
	if err != nil {
		return nil, err
	}
	return obj(media, obj("schema", s)), nil
}

func ref(name string) *object { return obj("$ref", "#/components/schemas/"+name) }

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// object is a JSON object that keeps its keys in the order they were
// set, so the document reads in the table's and the structs' order and
// is the same bytes every time.
type object struct {
	keys []string
	vals map[string]any
}

// obj makes an object of key, value pairs.
func obj(kv ...any) *object {
	o := &object{}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

func (o *object) set(k string, v any) {
	if o.vals == nil {
		o.vals = map[string]any{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) get(k string) any { return o.vals[k] }

func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(o.vals[k]); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

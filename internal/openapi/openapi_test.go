package openapi

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// allAdmin gives every public route of api.Routes to admins: the
// controller gives the real access (its policy table).
func allAdmin() map[string]Access {
	m := map[string]Access{}
	for _, r := range api.Routes {
		m[r.Pattern()] = Access{Role: "admin"}
	}
	m["GET /v1/version"] = Access{Role: "anyone"}
	return m
}

func generate(t *testing.T) []byte {
	t.Helper()
	b, err := Generate(api.Routes, Options{Access: allAdmin(), Enums: api.Enumerations()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The document of api.Routes is well formed, and the same bytes twice.
func TestGenerateValid(t *testing.T) {
	b := generate(t)
	if !bytes.Equal(b, generate(t)) {
		t.Fatal("two runs wrote different documents")
	}
	if p := os.Getenv("OPENAPI_DUMP"); p != "" {
		_ = os.WriteFile(p, b, 0o644)
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range Check(d) {
		t.Error(e)
	}
	paths := d["paths"].(map[string]any)
	for _, r := range api.Routes {
		item, _ := paths[r.Path].(map[string]any)
		_, there := item[strings.ToLower(r.Method)]
		if there == r.Internal {
			t.Errorf("%s (internal %v) is in the document: %v", r.Pattern(), r.Internal, there)
		}
	}
}

type color string

type inner struct {
	Depth  int    `json:"depth"`
	Shadow string `json:"shadow"` // shadowed by outer's
	Tie    int    `json:"tie"`
}

type other struct {
	Tie int `json:"tie"` // ties with inner's at one depth: neither is written
}

type weird struct{}

func (weird) MarshalJSON() ([]byte, error) { return []byte(`1`), nil }

type sample struct {
	inner
	*other
	Name     string            `json:"name"`
	Shadow   int               `json:"shadow"`
	Nick     string            `json:"nick,omitempty"`
	At       time.Time         `json:"at,omitempty"` // omitempty never omits a struct
	Gone     time.Time         `json:"gone,omitzero"`
	Color    color             `json:"color"`
	MaybeCol color             `json:"maybe_color,omitempty"`
	Ptr      *inner            `json:"ptr"`
	OptPtr   *inner            `json:"opt_ptr,omitempty"`
	List     []int             `json:"list"`
	Labels   map[string]string `json:"labels,omitempty"`
	Count    int64             `json:"count,string"`
	Blob     []byte            `json:"blob,omitempty"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	Ratio    float64           `json:"ratio"`
	Skipped  int               `json:"-"`
	Untagged bool
	hidden   int
}

// The schemas say what encoding/json writes: names from tags, embedded
// fields promoted (the shallower of two names wins, a tie writes
// neither), required unless it may be omitted, null where a nil is
// written, enumerations by reference.
func TestSchemaMapping(t *testing.T) {
	g := &gen{schemas: &object{}, names: map[string]reflect.Type{}, enums: map[reflect.Type][]string{reflect.TypeFor[color](): {"red", "blue"}}}
	s, err := g.schema(reflect.TypeFor[sample]())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(obj("ref", s, "components", g.schemas))
	var got struct {
		Ref        map[string]string
		Components map[string]struct {
			Properties map[string]map[string]any
			Required   []string
			Enum       []string
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Ref["$ref"] != "#/components/schemas/sample" {
		t.Fatalf("ref %v", got.Ref)
	}
	sm := got.Components["sample"]
	var props []string
	for k := range sm.Properties {
		props = append(props, k)
	}
	slices.Sort(props)
	want := []string{"Untagged", "at", "blob", "color", "count", "depth", "gone", "labels", "list", "maybe_color", "name", "nick", "opt_ptr", "ptr", "ratio", "raw", "shadow"}
	if !slices.Equal(props, want) {
		t.Errorf("properties %v\nwant %v", props, want)
	}
	slices.Sort(sm.Required)
	wantReq := []string{"Untagged", "at", "color", "count", "depth", "list", "name", "ptr", "ratio", "shadow"}
	if !slices.Equal(sm.Required, wantReq) {
		t.Errorf("required %v\nwant %v", sm.Required, wantReq)
	}
	p := sm.Properties
	for name, wantJSON := range map[string]string{
		"shadow":      `{"format":"int64","type":"integer"}`,
		"at":          `{"format":"date-time","type":"string"}`,
		"color":       `{"anyOf":[{"$ref":"#/components/schemas/color"},{"enum":[""],"type":"string"}]}`,
		"maybe_color": `{"$ref":"#/components/schemas/color"}`,
		"ptr":         `{"allOf":[{"$ref":"#/components/schemas/inner"}],"nullable":true}`,
		"opt_ptr":     `{"$ref":"#/components/schemas/inner"}`,
		"list":        `{"items":{"format":"int64","type":"integer"},"nullable":true,"type":"array"}`,
		"labels":      `{"additionalProperties":{"type":"string"},"type":"object"}`,
		"count":       `{"type":"string"}`,
		"blob":        `{"format":"byte","type":"string"}`,
		"raw":         `{}`,
		"ratio":       `{"format":"double","type":"number"}`,
	} {
		b, _ := json.Marshal(p[name])
		if string(b) != wantJSON {
			t.Errorf("%s: %s\nwant %s", name, b, wantJSON)
		}
	}
	if e := got.Components["color"].Enum; !slices.Equal(e, []string{"red", "blue"}) {
		t.Errorf("color enum %v", e)
	}
	if _, err := g.schema(reflect.TypeFor[struct{ W weird }]()); err == nil || !strings.Contains(err.Error(), "MarshalJSON") {
		t.Errorf("a type with its own MarshalJSON: %v; want refused", err)
	}
	if _, err := g.schema(reflect.TypeFor[struct{ C chan int }]()); err == nil {
		t.Error("a channel was given a schema")
	}
}

// The schema of every public route's reply is what encoding/json
// writes of a value filled in: Conforms finds nothing in it, and finds
// what is wrong in a reply that breaks it.
func TestConforms(t *testing.T) {
	d, err := Parse(generate(t))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	vm := api.VM{ID: "v1", Name: "web", State: api.VMRunning, Ports: []api.Port{{ID: "p1"}}, LastPanic: &api.GuestPanic{At: at}, CreatedAt: at}
	b, _ := json.Marshal(vm)
	var v any
	_ = json.Unmarshal(b, &v)
	s, err := d.Schema("GET", "/v1/vms/{name}", 200)
	if err != nil {
		t.Fatal(err)
	}
	if bad := Conforms(d, s, v, "vm"); len(bad) > 0 {
		t.Errorf("a VM breaks its schema: %v", bad)
	}
	m := v.(map[string]any)
	m["extra"] = 1
	delete(m, "name")
	m["pid"] = "12"
	m["ports"].([]any)[0].(map[string]any)["mac"] = true
	bad := strings.Join(Conforms(d, s, v, "vm"), "\n")
	for _, want := range []string{`vm: key "extra" is not a property`, `vm: required "name" is missing`, `vm.pid: a string`, `vm.ports[0].mac: a boolean`} {
		if !strings.Contains(bad, want) {
			t.Errorf("Conforms missed %q in:\n%s", want, bad)
		}
	}

	in := api.Intent{Kind: api.IntentDrain, State: "bogus"}
	b, _ = json.Marshal(in)
	_ = json.Unmarshal(b, &v)
	s, _ = d.Schema("GET", "/v1/intents/{id}", 200)
	if bad := strings.Join(Conforms(d, s, v, "intent"), "\n"); !strings.Contains(bad, "bogus is not one of") || strings.Contains(bad, "operations") {
		t.Errorf("Conforms: %s; want the state out of its enum, operations null allowed", bad)
	}
}

// Check finds each kind of structural fault.
func TestCheckFindsFaults(t *testing.T) {
	d, err := Parse(generate(t))
	if err != nil {
		t.Fatal(err)
	}
	paths := d["paths"].(map[string]any)
	get := func(p, m string) map[string]any { return paths[p].(map[string]any)[m].(map[string]any) }
	get("/v1/hosts/{name}", "get")["parameters"] = []any{}
	get("/v1/vms", "get")["parameters"] = append(get("/v1/vms", "get")["parameters"].([]any),
		map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{}})
	get("/v1/images", "get")["operationId"] = "listHosts"
	get("/v1/version", "get")["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"] = map[string]any{"$ref": "#/components/schemas/Nope"}
	delete(d["components"].(map[string]any)["schemas"].(map[string]any), "Revocation")
	bad := strings.Join(Check(d), "\n")
	for _, want := range []string{
		"GET /v1/hosts/{name}: path parameter {name} is not declared",
		"GET /v1/vms: path parameter id is not in the path",
		"share operationId listHosts",
		"$ref #/components/schemas/Nope does not resolve",
		"$ref #/components/schemas/Revocation does not resolve",
		"schema Version is used nowhere",
	} {
		if !strings.Contains(bad, want) {
			t.Errorf("Check missed %q in:\n%s", want, bad)
		}
	}
}

// A sample of every request body's schema, each field there, decodes
// strictly into the route's Go type, and a sample of every reply's
// schema into its type: the names and types of the document are those
// encoding/json reads.
func TestSamplesDecode(t *testing.T) {
	d, err := Parse(generate(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range api.Routes {
		if r.Internal {
			continue
		}
		type body struct {
			b      *api.Body
			schema any
		}
		var bs []body
		if s, ok := d.RequestSchema(r.Method, r.Path); ok {
			bs = append(bs, body{r.Request, s})
		}
		for _, resp := range r.Responses {
			if s, err := d.Schema(r.Method, r.Path, resp.Status); err == nil {
				bs = append(bs, body{resp.Body, s})
			}
		}
		for _, b := range bs {
			raw, _ := json.Marshal(d.Sample(b.schema))
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			v := reflect.New(reflect.TypeOf(b.b.Type))
			if err := dec.Decode(v.Interface()); err != nil {
				t.Errorf("%s: %s does not decode into %s: %v", r.Pattern(), raw, v.Type().Elem(), err)
			}
			n++
		}
	}
	if n < 40 {
		t.Errorf("only %d bodies sampled", n)
	}
}

// descriptions.json holds the doc comments of package api as they are
// now, and the document gives them: a deprecated field is marked.
func TestDescriptionsCommitted(t *testing.T) {
	d, err := ReadDescriptions("../../api")
	if err != nil {
		t.Fatal(err)
	}
	if len(d) < 100 {
		t.Fatalf("only %d descriptions read: the reader is broken", len(d))
	}
	if !reflect.DeepEqual(d, Embedded()) {
		t.Error("internal/openapi/descriptions.json is not package api's doc comments as they are now: regenerate it with make openapi and commit it")
	}
	b, err := Generate(api.Routes, Options{Access: allAdmin(), Enums: api.Enumerations(), Descriptions: d})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := Parse(b)
	props := doc["components"].(map[string]any)["schemas"].(map[string]any)["MigrateRequest"].(map[string]any)["properties"].(map[string]any)
	old := props["bandwidth_mbps"].(map[string]any)
	if old["deprecated"] != true || !strings.HasPrefix(old["description"].(string), "Deprecated:") {
		t.Errorf("bandwidth_mbps: %v; want deprecated, with its comment", old)
	}
	if kind := props["kind"].(map[string]any); kind["allOf"] == nil || kind["description"] == nil {
		t.Errorf("kind: %v; want its reference wrapped in allOf beside its description", kind)
	}
	for _, e := range Check(doc) {
		t.Error(e)
	}
}

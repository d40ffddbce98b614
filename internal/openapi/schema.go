package openapi

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

var (
	timeType      = reflect.TypeFor[time.Time]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// schema is the schema of what encoding/json writes for a value of t:
// a reference to a component for a named struct or enumerated string
// type, an inline schema for the rest.
func (g *gen) schema(t reflect.Type) (*object, error) {
	switch {
	case t == nil:
		return obj(), nil // an interface: anything
	case t == timeType:
		return obj("type", "string", "format", "date-time"), nil
	case t == rawType:
		return obj(), nil
	case t.Kind() != reflect.Pointer && (t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler)):
		// Its JSON is whatever its method writes, which reflection
		// cannot see: describe it here before using it in the API.
		return nil, fmt.Errorf("%s has its own MarshalJSON; teach package openapi its schema", t)
	case t.Kind() != reflect.Pointer && t.Implements(textMarshaler):
		return obj("type", "string"), nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		if vals, ok := g.enums[t]; ok {
			if err := g.component(t, func() (*object, error) {
				return described(obj("type", "string", "enum", strs(vals)), g.desc[t.Name()]), nil
			}); err != nil {
				return nil, err
			}
			return ref(t.Name()), nil
		}
		return obj("type", "string"), nil
	case reflect.Bool:
		return obj("type", "boolean"), nil
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return obj("type", "integer", "format", "int32"), nil
	case reflect.Int, reflect.Int64:
		return obj("type", "integer", "format", "int64"), nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint, reflect.Uint64:
		return obj("type", "integer", "format", "int64", "minimum", 0), nil
	case reflect.Float32:
		return obj("type", "number", "format", "float"), nil
	case reflect.Float64:
		return obj("type", "number", "format", "double"), nil
	case reflect.Interface:
		return obj(), nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return obj("type", "string", "format", "byte"), nil // base64
		}
		items, err := g.schema(t.Elem())
		if err != nil {
			return nil, err
		}
		return obj("type", "array", "items", items), nil
	case reflect.Map:
		if k := t.Key(); k.Kind() != reflect.String && !k.Implements(textMarshaler) {
			switch k.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			default:
				return nil, fmt.Errorf("%s: encoding/json cannot write a map keyed by %s", t, k)
			}
		}
		vals, err := g.schema(t.Elem())
		if err != nil {
			return nil, err
		}
		return obj("type", "object", "additionalProperties", vals), nil
	case reflect.Struct:
		if t.Name() == "" {
			return g.structSchema(t)
		}
		if err := g.component(t, func() (*object, error) {
			s, err := g.structSchema(t)
			if err != nil {
				return nil, err
			}
			return described(s, g.desc[t.Name()]), nil
		}); err != nil {
			return nil, err
		}
		return ref(t.Name()), nil
	}
	return nil, fmt.Errorf("%s: encoding/json cannot write a %s", t, t.Kind())
}

// component adds t's schema to the components once, under t's name;
// two types of one name are an error.
func (g *gen) component(t reflect.Type, build func() (*object, error)) error {
	name := t.Name()
	if other, ok := g.names[name]; ok {
		if other != t {
			return fmt.Errorf("two types are named %s: %s and %s", name, other, t)
		}
		return nil
	}
	g.names[name] = t
	g.schemas.set(name, nil) // its place, kept while a recursive type is built
	s, err := build()
	if err != nil {
		return err
	}
	g.schemas.set(name, s)
	return nil
}

// structSchema is an object with t's JSON fields as properties, required
// when encoding/json always writes them.
func (g *gen) structSchema(t reflect.Type) (*object, error) {
	fields := jsonFields(t)
	if len(fields) == 0 {
		return obj("type", "object"), nil
	}
	props := &object{}
	var required []any
	for _, f := range fields {
		s, err := g.fieldSchema(f)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t, f.goName, err)
		}
		props.set(f.name, described(s, g.desc[f.owner+"."+f.goName]))
		if !f.omitted() {
			required = append(required, f.name)
		}
	}
	o := obj("type", "object", "properties", props)
	if len(required) > 0 {
		o.set("required", required)
	}
	return o, nil
}

// fieldSchema is a field's schema: its type's, written as a string with
// the ",string" option, null-able where encoding/json writes null (a
// nil pointer, slice or map it does not omit), and with the empty
// string allowed for an enumerated word it does not omit (its zero
// value: unset).
func (g *gen) fieldSchema(f field) (*object, error) {
	if f.quoted {
		switch f.typ.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			return obj("type", "string"), nil
		}
	}
	s, err := g.schema(f.typ)
	if err != nil {
		return nil, err
	}
	if f.omitted() {
		return s, nil
	}
	if _, enum := g.enums[f.typ]; enum {
		return obj("anyOf", []any{s, obj("type", "string", "enum", []any{""})}), nil
	}
	switch f.typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		if f.typ.Kind() == reflect.Slice && f.typ.Elem().Kind() == reflect.Uint8 {
			break
		}
		if s.get("$ref") != nil {
			return obj("allOf", []any{s}, "nullable", true), nil
		}
		if len(s.keys) > 0 {
			s.set("nullable", true)
		}
	}
	return s, nil
}

// field is one JSON field of a struct, after encoding/json's rules.
type field struct {
	name, goName string
	owner        string // the name of the struct that declares it
	typ          reflect.Type
	omitEmpty    bool
	omitZero     bool
	quoted       bool
	depth        int
	tagged       bool
}

// omitted reports whether encoding/json may leave the field out: with
// omitzero, or omitempty on a kind it omits when empty (never a struct).
func (f field) omitted() bool {
	if f.omitZero {
		return true
	}
	if !f.omitEmpty {
		return false
	}
	switch f.typ.Kind() {
	case reflect.Struct:
		return false
	case reflect.Array:
		return f.typ.Len() == 0
	}
	return true
}

// jsonFields lists t's fields as encoding/json writes them: exported
// fields by their tag's name, those of embedded structs promoted, and
// of two fields of one name the shallower, or the tagged of two at one
// depth (neither when that does not decide).
func jsonFields(t reflect.Type) []field {
	var all []field
	var walk func(t reflect.Type, depth int, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, depth int, seen map[reflect.Type]bool) {
		if seen[t] {
			return
		}
		seen[t] = true
		defer delete(seen, t)
		for i := range t.NumField() {
			sf := t.Field(i)
			ft := sf.Type
			if sf.Anonymous {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if !sf.IsExported() && ft.Kind() != reflect.Struct {
					continue
				}
			} else if !sf.IsExported() {
				continue
			}
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
				walk(ft, depth+1, seen)
				continue
			}
			f := field{name: name, goName: sf.Name, owner: t.Name(), typ: sf.Type, depth: depth, tagged: name != ""}
			if f.name == "" {
				f.name = sf.Name
			}
			for o := range strings.SplitSeq(opts, ",") {
				switch o {
				case "omitempty":
					f.omitEmpty = true
				case "omitzero":
					f.omitZero = true
				case "string":
					f.quoted = true
				}
			}
			all = append(all, f)
		}
	}
	walk(t, 0, map[reflect.Type]bool{})
	byName := map[string][]field{}
	for _, f := range all {
		byName[f.name] = append(byName[f.name], f)
	}
	var out []field
	for _, f := range all {
		if dominant(byName[f.name]) == f {
			out = append(out, f)
		}
	}
	return out
}

// dominant is the one of fs encoding/json writes, or the zero field.
func dominant(fs []field) field {
	if len(fs) == 1 {
		return fs[0]
	}
	minDepth := fs[0].depth
	for _, f := range fs {
		minDepth = min(minDepth, f.depth)
	}
	var top, tagged []field
	for _, f := range fs {
		if f.depth == minDepth {
			top = append(top, f)
			if f.tagged {
				tagged = append(tagged, f)
			}
		}
	}
	switch {
	case len(top) == 1:
		return top[0]
	case len(tagged) == 1:
		return tagged[0]
	}
	return field{}
}

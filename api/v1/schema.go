package v1

//go:generate go run ../../hack/schemagen

import (
	"bytes"
	_ "embed" // schema.json
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// The JSON Schema of the documents, for editors (`reconciler schema`). It is
// built from the Go types by reflection, so it cannot drift from what the
// parser accepts, with every property's description taken from the doc
// comment of its field in types.go. The doc comments are only in the source,
// so a generator (hack/schemagen, run by `go generate ./api/v1`) reads them
// and writes schema.json, which is embedded; a test fails when it is stale.

// SchemaID is the $id of the schema.
const SchemaID = "https://reconciler.dev/schemas/v1/document.schema.json"

//go:embed schema.json
var schemaJSON []byte

// Schema returns the JSON Schema (draft 2020-12) of one document: a Host or a
// Defaults, told apart by kind.
func Schema() []byte { return bytes.Clone(schemaJSON) }

// durationPattern is what time.ParseDuration accepts and ParseDuration keeps
// (no negative durations): "0", or numbers each followed by a unit.
const durationPattern = `^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// Enums of the named string types, in the order documentation shows them.
var schemaEnums = map[reflect.Type][]string{
	reflect.TypeOf(DriftMode("")):         {string(DriftEnforce), string(DriftReport)},
	reflect.TypeOf(MaintenancePolicy("")): {string(MaintenanceStop), string(MaintenanceKeep)},
	reflect.TypeOf(Driver("")):            driverNames(),
	reflect.TypeOf(ExitCondition("")):     {string(ExitSuccess), string(ExitFailure), string(ExitAny)},
}

func driverNames() []string {
	out := make([]string, len(Drivers))
	for i, d := range Drivers {
		out[i] = string(d)
	}
	return out
}

// schemaFieldExtras are keywords a field's type alone does not say: the
// bounds and enums validation enforces, so an editor flags them as you type.
// Keyed "Type.Field" like the docs.
var schemaFieldExtras = map[string]map[string]any{
	"TypeMeta.APIVersion":          {"const": APIVersion},
	"TypeMeta.Kind":                {"enum": []string{KindHost, KindDefaults}},
	"Service.Replicas":             {"minimum": 0},
	"Service.DependsOn":            {"uniqueItems": true},
	"Service.OnNotReady":           {"enum": []string{OnNotReadyDown, OnNotReadyKeep}},
	"Probe.Exec":                   {"minItems": 1},
	"Autoscale.Min":                {"minimum": 0},
	"Autoscale.Max":                {"minimum": 1},
	"Autoscale.MessagesPerReplica": {"minimum": 1},
	"Autoscale.MaxStepDown":        {"minimum": 1},
	"LabelSelector.MatchLabels":    {"minProperties": 1},
	"RestartPolicy.Limit":          {"minimum": 1},
	"FailurePolicy.Start":          {"uniqueItems": true},
	"StartTrigger.Start":           {"uniqueItems": true, "minItems": 1},
	"ExitTrigger.Start":            {"uniqueItems": true, "minItems": 1},
	"ServiceSelector.Names":        {"minItems": 1},
}

// schemaRequired overrides the rule that a field whose json tag lacks
// omitempty is required: a Host may say nothing but its name, and a selector
// without matchLabels selects nothing.
var schemaRequired = map[string]bool{
	"Host.Spec":                 false,
	"LabelSelector.MatchLabels": true,
}

// schemaTypeExtras are keywords about a whole type: what validation says
// about how its fields go together.
var schemaTypeExtras = map[string]map[string]any{
	"Probe": {"oneOf": []any{
		map[string]any{"required": []string{"tcp"}},
		map[string]any{"required": []string{"http"}},
		map[string]any{"required": []string{"exec"}},
	}},
	"ServiceSelector": {"minProperties": 1},
	"DefaultsSpec": {"anyOf": []any{
		map[string]any{"required": []string{"hosts"}},
		map[string]any{"required": []string{"selector"}},
	}},
}

// BuildSchema returns the JSON Schema of the documents, indented, ending in
// a newline. docs holds the doc comments: "Type.Field" (and "Type" for a
// type) -> text, as internal/godoc reads them from this package's source.
// Every property must have one: a field added without a doc comment is an
// error here, so the schema never has a property without a description.
//
// The schema is as strict as the parser about shape (no unknown fields,
// anywhere) and says what validation checks on single values (enums, bounds,
// duration syntax, exactly one probe). What needs more than one value or more
// than one document (duplicate names, dependsOn targets and cycles, min <=
// max) is left to `reconciler validate`. Strings are typed as strings: the
// parser, like Kubernetes tools, also takes an unquoted number or boolean
// where a string is wanted (restartOn: 42); an editor asks you to quote it.
func BuildSchema(docs map[string]string) ([]byte, error) {
	b := &schemaBuilder{docs: docs, defs: map[string]any{}}
	for _, t := range []reflect.Type{reflect.TypeOf(Host{}), reflect.TypeOf(Defaults{})} {
		b.ref(t)
	}
	var dispatch []any
	for _, kind := range []string{KindHost, KindDefaults} {
		dispatch = append(dispatch, map[string]any{
			"if": map[string]any{
				"properties": map[string]any{"kind": map[string]any{"const": kind}},
				"required":   []string{"kind"},
			},
			"then": map[string]any{"$ref": "#/$defs/" + kind},
		})
	}
	typeMeta := reflect.TypeOf(TypeMeta{})
	// metadata and spec are checked by the kind's definition; here they only
	// say what they are, for both kinds.
	either := func(field string) map[string]any {
		h := b.field(reflect.TypeOf(Host{}), field)["description"]
		d := b.field(reflect.TypeOf(Defaults{}), field)["description"]
		return map[string]any{"type": "object", "description": fmt.Sprintf("In a Host: %s In a Defaults: %s", h, d)}
	}
	root := map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$id":     SchemaID,
		"title":   APIVersion + " document",
		"description": "One YAML document of a desired-state repository: a Host (the desired state of one host) " +
			"or a Defaults (merged under every Host it selects), told apart by kind. " +
			"Generated from api/v1/types.go by `go generate ./api/v1`; do not edit.",
		"type":     "object",
		"required": []string{"apiVersion", "kind"},
		"properties": map[string]any{
			"apiVersion": b.field(typeMeta, "APIVersion"),
			"kind":       b.field(typeMeta, "Kind"),
			"metadata":   either("Metadata"),
			"spec":       either("Spec"),
		},
		"additionalProperties": false,
		"allOf":                dispatch,
		"$defs":                b.defs,
	}
	if len(b.missing) > 0 {
		sort.Strings(b.missing)
		return nil, fmt.Errorf("no doc comment in api/v1 for: %s", strings.Join(slices.Compact(b.missing), ", "))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type schemaBuilder struct {
	docs    map[string]string
	defs    map[string]any
	missing []string
}

// ref returns a reference to the definition of a named type, defining it
// the first time.
func (b *schemaBuilder) ref(t reflect.Type) map[string]any {
	name := t.Name()
	if _, done := b.defs[name]; !done {
		b.defs[name] = nil // taken, in case a type ever refers to itself
		b.defs[name] = b.define(t)
	}
	return map[string]any{"$ref": "#/$defs/" + name}
}

func (b *schemaBuilder) define(t reflect.Type) map[string]any {
	var s map[string]any
	switch t {
	case durationType:
		s = map[string]any{"type": "string", "pattern": durationPattern}
	case timeType:
		s = map[string]any{"type": "string", "format": "date-time"}
	case maintenanceType:
		s = map[string]any{"oneOf": []any{
			map[string]any{"type": "boolean", "description": "The short form: true is {enabled: true}, false is {enabled: false}."},
			b.object(t),
		}}
	case failureType:
		s = map[string]any{"oneOf": []any{
			map[string]any{"type": "string", "const": FailureReport, "description": "The short form: only report the failure (the default)."},
			b.object(t),
		}}
	default:
		if enum, ok := schemaEnums[t]; ok {
			s = map[string]any{"type": "string", "enum": enum}
		} else {
			s = b.object(t)
		}
	}
	if d := b.docs[t.Name()]; d != "" {
		s["description"] = d
	}
	for k, v := range schemaTypeExtras[t.Name()] {
		s[k] = v
	}
	switch t.Name() {
	case KindHost, KindDefaults:
		// In a Host, kind can only be Host; in a Defaults, Defaults.
		props := s["properties"].(map[string]any)
		kind := props["kind"].(map[string]any)
		delete(kind, "enum")
		kind["const"] = t.Name()
	}
	return s
}

// object is the schema of a struct: its JSON fields, inline structs
// flattened as the parser does, nothing else allowed.
func (b *schemaBuilder) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	b.fields(t, props, &required)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		sort.Strings(required)
		s["required"] = required
	}
	return s
}

func (b *schemaBuilder) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			// Inline: its fields are the parent's, documented where declared.
			b.fields(f.Type, props, required)
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		key := t.Name() + "." + f.Name
		props[name] = b.field(t, f.Name)
		req := !strings.Contains(","+opts+",", ",omitempty,")
		if r, ok := schemaRequired[key]; ok {
			req = r
		}
		if req {
			*required = append(*required, name)
		}
	}
}

// field is the schema of a field of struct t: its type's schema, its
// description and any extra keywords.
func (b *schemaBuilder) field(t reflect.Type, name string) map[string]any {
	f, _ := t.FieldByName(name)
	key := t.Name() + "." + name
	s := b.typeSchema(f.Type)
	if d := b.docs[key]; d != "" {
		// Go comments start with the Go name; editors show the YAML one.
		if jsonName := jsonName(f); jsonName != "" {
			if rest, ok := strings.CutPrefix(d, f.Name+" "); ok {
				d = jsonName + " " + rest
			}
		}
		s["description"] = d
	} else {
		b.missing = append(b.missing, key)
	}
	for k, v := range schemaFieldExtras[key] {
		s[k] = v
	}
	return s
}

func (b *schemaBuilder) typeSchema(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if _, enum := schemaEnums[t]; enum || t.Kind() == reflect.Struct {
		return b.ref(t)
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int32:
		return map[string]any{"type": "integer", "minimum": math.MinInt32, "maximum": math.MaxInt32}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": b.typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": b.typeSchema(t.Elem())}
	}
	panic(fmt.Sprintf("v1.BuildSchema: no schema for type %s", t))
}

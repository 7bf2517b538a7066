package v1_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/internal/godoc"
)

// TestSchemaIsGenerated fails when schema.json is not what the types and
// their doc comments make now: someone changed types.go and forgot
// `go generate ./api/v1`.
func TestSchemaIsGenerated(t *testing.T) {
	docs, err := godoc.Dir(".")
	if err != nil {
		t.Fatal(err)
	}
	want, err := v1.BuildSchema(docs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v1.Schema(), want) {
		t.Fatal("api/v1/schema.json is stale: run `go generate ./api/v1` and commit the result")
	}
}

// TestBuildSchemaNeedsEveryDoc: a field without a doc comment is an error,
// not a property without a description.
func TestBuildSchemaNeedsEveryDoc(t *testing.T) {
	docs, err := godoc.Dir(".")
	if err != nil {
		t.Fatal(err)
	}
	delete(docs, "Service.Replicas")
	delete(docs, "TypeMeta.Kind")
	_, err = v1.BuildSchema(docs)
	if err == nil || !strings.Contains(err.Error(), "Service.Replicas, TypeMeta.Kind") {
		t.Fatalf("BuildSchema without two docs: err = %v", err)
	}
}

// TestSchemaShape walks the whole schema: every property has a description,
// every object with properties allows nothing else, and every definition the
// brief for editors names is there.
func TestSchemaShape(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(v1.Schema(), &root); err != nil {
		t.Fatal(err)
	}
	if got := root["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", got)
	}
	defs, _ := root["$defs"].(map[string]any)
	for _, name := range []string{"Host", "Defaults", "HostSpec", "DefaultsSpec", "ObjectMeta", "Service", "Probe",
		"Autoscale", "AMQPQueue", "Unit", "Maintenance", "Duration", "Time", "LabelSelector", "Driver", "DriftMode", "MaintenancePolicy"} {
		if d, ok := defs[name].(map[string]any); !ok {
			t.Errorf("$defs has no %s", name)
		} else if s, _ := d["description"].(string); s == "" {
			t.Errorf("$defs.%s has no description", name)
		}
	}
	props := 0
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ps, ok := v["properties"].(map[string]any); ok && !strings.HasSuffix(p, "/if") {
				if v["additionalProperties"] != false && v["unevaluatedProperties"] != false {
					t.Errorf("%s: allows unknown properties", p)
				}
				for name, s := range ps {
					props++
					d, _ := s.(map[string]any)["description"].(string)
					if strings.TrimSpace(d) == "" {
						t.Errorf("%s/properties/%s: no description", p, name)
					}
				}
			}
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(p+"/"+k, v[k])
			}
		case []any:
			for i, e := range v {
				walk(p+"/"+string(rune('0'+i)), e)
			}
		}
	}
	walk("#", root)
	if props < 40 {
		t.Errorf("only %d properties in the schema", props)
	}

	// The enums come from the Go constants.
	driver := defs["Driver"].(map[string]any)["enum"].([]any)
	if len(driver) != len(v1.Drivers) {
		t.Errorf("Driver enum = %v, want %v", driver, v1.Drivers)
	}
}

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(v1.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // date-time is checked, as the parser does
	if err := c.AddResource(v1.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	// Compiling also checks the schema against the 2020-12 meta-schema.
	sch, err := c.Compile(v1.SchemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return sch
}

// documents splits YAML into its documents as JSON values, read the way the
// parser reads them (YAML 1.2: yes is a string, not true).
func documents(t *testing.T, data []byte) []any {
	t.Helper()
	var out []any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := n.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, inst)
	}
}

// TestSchemaAcceptsExamples: every document of every example repository
// (examples/invalid aside, and examples/deploy, which holds files to deploy
// and watch the agent itself) is valid against the schema.
func TestSchemaAcceptsExamples(t *testing.T) {
	sch := compile(t)
	root := filepath.Join("..", "..", "examples")
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "invalid" || d.Name() == "deploy") {
			return fs.SkipDir
		}
		if d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, doc := range documents(t, data) {
			n++
			if err := sch.Validate(doc); err != nil {
				t.Errorf("%s, document %d: %v", p, i+1, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("only %d example documents found under %s", n, root)
	}
}

const host = `apiVersion: reconciler.dev/v1
kind: Host
metadata:
  name: h1
`

// schemaCase is one document and whether it is valid.
type schemaCase struct {
	name  string
	doc   string
	valid bool
}

// checkSchemaAgrees checks, for each case, that the schema editors use
// and the parser with document validation both say what the case says.
func checkSchemaAgrees(t *testing.T, cases []schemaCase) {
	t.Helper()
	sch := compile(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			docs := documents(t, []byte(c.doc))
			if len(docs) != 1 {
				t.Fatalf("%d documents", len(docs))
			}
			err := sch.Validate(docs[0])
			if c.valid && err != nil {
				t.Errorf("schema rejects it: %v", err)
			}
			if err != nil {
				t.Logf("schema: %v", err) // with -v: the message an editor shows
			}
			if !c.valid && err == nil {
				t.Errorf("schema accepts it")
			}
			parsed, errs := v1.ParseFile("x.yaml", []byte(c.doc))
			for _, d := range parsed {
				errs = append(errs, v1.ValidateDocument(d)...)
			}
			if c.valid != (len(errs) == 0) {
				t.Errorf("the schema says valid=%v, the parser and ValidateDocument say: %v", c.valid, errs)
			}
		})
	}
}

// TestSchemaAgreesWithParser: single documents the schema accepts, the
// parser and document validation accept too, and the other way round.
func TestSchemaAgreesWithParser(t *testing.T) {
	checkSchemaAgrees(t, []schemaCase{
		{"host with a name only", host, true},
		{"maintenance short form", host + "spec: {maintenance: true}\n", true},
		{"maintenance long form", host + "spec: {maintenance: {enabled: true, until: \"2026-12-01T06:00:00Z\", reason: firmware}}\n", true},
		{"every driver field", host + `spec:
  services:
    - {name: a, replicas: 1, image: "reg/a:1", stopTimeout: 1m30s, maintenance: keep, drift: report}
    - {name: b, driver: systemd, unit: b@.service, replicas: 3, dependsOn: [a], ready: {exec: [sh, -c, "true"], timeout: 5s, interval: 500ms}}
    - {name: c, driver: compose, project: p, replicas: 2, ready: {http: "http://127.0.0.1:80/"}}
    - {name: d, driver: supervisor, program: d, socket: /run/s.sock, replicas: 0}
    - {name: e, driver: daemontools, dir: /service/e, once: true, onNotReady: keep, restartOn: "abc", replicas: 1}
  units:
    - {name: t.timer, enabled: false, active: false, maintenance: keep, drift: enforce}
`, true},
		{"defaults by glob and selector", `apiVersion: reconciler.dev/v1
kind: Defaults
metadata: {name: d}
spec: {hosts: ["fp-*"], selector: {matchLabels: {site: a}}, drift: report}
`, true},

		{"unknown top-level field", host + "status: {}\n", false},
		{"unknown field in a service", host + "spec: {services: [{name: a, replica: 1}]}\n", false},
		{"unknown field in metadata", host + "  namespace: x\n", false},
		{"unknown field in a probe", host + "spec: {services: [{name: a, replicas: 1, ready: {tcp: \"h:1\", retries: 3}}]}\n", false},
		{"unknown field in maintenance", host + "spec: {maintenance: {enabled: true, why: x}}\n", false},
		{"unknown kind", strings.Replace(host, "kind: Host", "kind: Hosts", 1), false},
		{"no kind", strings.Replace(host, "kind: Host\n", "", 1), false},
		{"wrong apiVersion", strings.Replace(host, "/v1", "/v2", 1), false},
		{"no metadata.name", "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {labels: {a: b}}\n", false},
		{"service without a name", host + "spec: {services: [{replicas: 1}]}\n", false},
		{"replicas is a string", host + "spec: {services: [{name: a, replicas: \"2\"}]}\n", false},
		{"negative replicas", host + "spec: {services: [{name: a, replicas: -1}]}\n", false},
		{"unknown driver", host + "spec: {services: [{name: a, driver: nomad, replicas: 1}]}\n", false},
		{"unknown drift mode", host + "spec: {drift: warn}\n", false},
		{"unknown maintenance policy", host + "spec: {units: [{name: t.timer, maintenance: pause}]}\n", false},
		{"unknown onNotReady", host + "spec: {services: [{name: a, driver: daemontools, replicas: 1, onNotReady: retry}]}\n", false},
		{"bad duration", host + "spec: {services: [{name: a, replicas: 1, stopTimeout: 10sec}]}\n", false},
		{"maintenance yes", host + "spec: {maintenance: yes}\n", false},
		{"until is not a time", host + "spec: {maintenance: {enabled: true, until: tomorrow}}\n", false},
		{"probe with two checks", host + "spec: {services: [{name: a, replicas: 1, ready: {tcp: \"h:1\", http: \"http://h/\"}}]}\n", false},
		{"probe with no check", host + "spec: {services: [{name: a, replicas: 1, ready: {timeout: 5s}}]}\n", false},
		{"autoscale max 0", host + "spec: {services: [{name: a, autoscale: {amqp: {urlFile: /f, queue: q}, min: 0, max: 0}}]}\n", false},
		{"defaults that select nothing", "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: d}\nspec: {drift: report}\n", false},
		{"empty selector", "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: d}\nspec: {selector: {matchLabels: {}}}\n", false},
		{"a Host field in Defaults", "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: d}\nspec: {hosts: [x], selector: {matchLabels: {a: b}}, nodes: [y]}\n", false},
	})
}

// TestSchemaDurationPattern: the pattern editors use accepts what the parser
// accepts, for the forms people write.
func TestSchemaDurationPattern(t *testing.T) {
	var root struct {
		Defs map[string]struct {
			Pattern string `json:"pattern"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(v1.Schema(), &root); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(root.Defs["Duration"].Pattern)
	for _, s := range []string{"0", "+0", "0s", "60s", "2m", "1h30m", "1.5h", ".5s", "5.s", "+5s", "10ms", "10us",
		"10µs", "10μs", "1ns", "1h2m3s4ms5us6ns", "", "10", "00", "10sec", "-1s", "1d", "s", "1h 30m", "1e3s", "1.2.3s", "5S"} {
		_, err := v1.ParseDuration(s)
		if got, want := re.MatchString(s), err == nil; got != want {
			t.Errorf("%q: pattern matches=%v, ParseDuration ok=%v", s, got, want)
		}
	}
}

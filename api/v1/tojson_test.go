package v1

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	k8syaml "sigs.k8s.io/yaml"
)

// reencodeDecode is how documents were decoded before decodeChecked: the
// checked tree re-encoded as YAML and read again by sigs.k8s.io/yaml. It is
// the oracle decodeChecked is held to.
func reencodeDecode(n *yaml.Node, target any) error {
	out, err := yaml.Marshal(n)
	if err == nil {
		err = k8syaml.UnmarshalStrict(out, target)
	}
	return err
}

// checkedTrees walks every document of data as parseDocument does and
// returns each checked tree with a fresh target of its kind.
func checkedTrees(data []byte) (trees []*yaml.Node, kinds []string) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for range 8 {
		var root yaml.Node
		if err := dec.Decode(&root); err != nil {
			return
		}
		if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
			continue
		}
		n := root.Content[0]
		kind := scalarField(n, "kind")
		if kind == nil || (kind.Value != KindHost && kind.Value != KindDefaults) {
			continue
		}
		w := &walker{file: "f", positions: map[string]Pos{}, b: NewBudget(Limits{MaxNodes: 20000})}
		w.walk(n, reflect.TypeOf(newTarget(kind.Value)).Elem(), path{})
		trees, kinds = append(trees, n), append(kinds, kind.Value)
	}
	return
}

func newTarget(kind string) any {
	if kind == KindHost {
		return &Host{}
	}
	return &Defaults{}
}

// agree fails the test where decodeChecked and the re-encoding decode the
// same checked tree differently, or only one of them refuses it.
func agree(t *testing.T, data []byte) {
	t.Helper()
	trees, kinds := checkedTrees(data)
	for i, n := range trees {
		got, want := newTarget(kinds[i]), newTarget(kinds[i])
		errGot := decodeChecked(n, got, 20000)
		errWant := reencodeDecode(n, want)
		switch {
		case errors.Is(errGot, errTooManyValues):
			// Bounded where the re-encoding is not: fine.
		case (errGot == nil) != (errWant == nil):
			t.Fatalf("document %d: decodeChecked: %v; re-encoding: %v\n%s", i, errGot, errWant, data)
		case errGot == nil && !reflect.DeepEqual(got, want):
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Fatalf("document %d decoded differently:\n got %s\nwant %s\n%s", i, g, w, data)
		}
	}
}

func exampleFiles(t testing.TB) [][]byte {
	var out [][]byte
	err := filepath.WalkDir("../../examples", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return err
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("reading examples/: %d files, %v", len(out), err)
	}
	return out
}

// The trickier inputs: YAML 1.1 words that stay text, numbers where text
// is wanted, both forms of maintenance and onFailure, aliases, nulls,
// escapes and integer syntaxes the walker accepts.
var decodeSeeds = []string{
	hostHeader + "spec:\n  maintenance: True\n  services:\n    - {name: n, replicas: 0x1, restartOn: 42}\n" +
		"    - {name: y, driver: systemd, replicas: +2, onExit: {start: [n], on: any}}\n",
	hostHeader + "spec:\n  maintenance: {enabled: false, until: 2026-12-01T06:00:00Z, reason: \"a \\\"b\\\"\\n\\tc\\u0001 é\"}\n",
	hostHeader + "spec:\n  services:\n    - &a {name: on, replicas: 017, labels: {off: yes, 1: 1.10, ~: null}}\n    - *a\n",
	"apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: d}\nspec:\n  hosts: [\"fp-*\", off]\n  services:\n" +
		"    - {name: x, onFailure: report, ready: {tcp: \"127.0.0.1:1\", timeout: 1m30s}}\n" +
		"    - {name: z, onFailure: {restart: 2}, image: |\n        literal\n      }\n",
	hostHeader + "spec:\n  services:\n    - name: s\n      replicas: 1_000\n      unknown: {a: b}\n      image: ~\n",
}

func TestDecodeCheckedAgreesWithReencoding(t *testing.T) {
	for _, b := range exampleFiles(t) {
		agree(t, b)
	}
	for _, s := range decodeSeeds {
		agree(t, []byte(s))
	}
}

// FuzzDecodeChecked holds the JSON built from the checked tree to what
// re-encoding it for sigs.k8s.io/yaml decoded.
func FuzzDecodeChecked(f *testing.F) {
	for _, b := range exampleFiles(f) {
		f.Add(b)
	}
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8<<10 {
			return
		}
		agree(t, data)
	})
}

// FuzzAppendJSONString: the string reads back as encoding/json's does.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\n\r\t", "é\u2028", "\xff\xfe ok \xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		appendJSONString(&buf, s)
		var got, want string
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%q: not a JSON string: %s: %v", s, buf.Bytes(), err)
		}
		ref, _ := json.Marshal(s)
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q reads back as %q, encoding/json's as %q", s, got, want)
		}
	})
}

package main

import (
	"bytes"
	"strings"
	"testing"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/desired"
)

func TestDiffWriters(t *testing.T) {
	rep := &diffReport{
		Base: diffRevision{ID: "aaaaaaaaaaaaaaaa"}, Head: diffRevision{ID: "bbbbbbbbbbbbbbbb"},
		DiffResult: &desired.DiffResult{
			Hosts: []desired.HostChange{
				{Host: "h1", Change: desired.ChangeNone},
				{Host: "h2", Change: desired.ChangeModified, Fields: []desired.FieldChange{{Field: "spec.maintenance.enabled", New: "true", OldAbsent: true}}},
				{Host: "h3", Change: desired.ChangeRemoved, Fields: []desired.FieldChange{{Field: "spec.drift", Old: `"a|b"`, NewAbsent: true}}},
			},
			HeadErrors: v1.ErrorList{{Pos: v1.Pos{File: "x.yaml", Line: 3, Col: 5}, Msg: "bad"}},
		},
	}
	tests := []struct {
		name  string
		write func(*bytes.Buffer)
		want  []string
		not   []string
	}{
		{"table", func(b *bytes.Buffer) { writeDiffTable(b, rep) }, []string{
			"h2    modified  spec.maintenance.enabled  (absent)  true",
			"h3    removed   spec.drift                \"a|b\"     (absent)",
			"2 of 3 hosts change", "x.yaml:3:5: bad",
		}, []string{"h1 "}},
		{"markdown", func(b *bytes.Buffer) { writeDiffMarkdown(b, rep, "main", "pr") }, []string{
			"**2 of 3 hosts change.**", "#### `h2` (modified)", "| `spec.maintenance.enabled` | `(absent)` | `true` |",
			"| `spec.drift` | `\"a\\|b\"` | `(absent)` |", "x.yaml:3:5: bad",
		}, []string{"`h1`"}},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		tc.write(&b)
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s lacks %q:\n%s", tc.name, w, b.String())
			}
		}
		for _, n := range tc.not {
			if strings.Contains(b.String(), n) {
				t.Errorf("%s names %q, which does not change:\n%s", tc.name, n, b.String())
			}
		}
	}
}

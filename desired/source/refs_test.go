package source

import (
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func h(c byte) plumbing.Hash { return plumbing.NewHash(strings.Repeat(string(c), 40)) }

func TestResolveRef(t *testing.T) {
	rl := refList{
		head: "refs/heads/main",
		refs: map[string]plumbing.Hash{
			"refs/heads/main":    h('1'),
			"refs/heads/dev":     h('2'),
			"refs/tags/v1":       h('a'), // annotated: a tag object
			"refs/tags/light":    h('2'),
			"refs/heads/both":    h('1'),
			"refs/tags/both":     h('2'),
			"refs/pull/1/head":   h('3'),
			"refs/heads/feat/x":  h('4'),
			"refs/tags/nested/y": h('5'),
		},
		peeled: map[string]plumbing.Hash{"refs/tags/v1": h('b')},
	}
	for _, tc := range []struct {
		ref            string
		name           string
		object, commit plumbing.Hash
		pinned, tip    bool
		err            string
	}{
		{ref: "", name: "refs/heads/main", object: h('1'), commit: h('1')},
		{ref: "HEAD", name: "refs/heads/main", object: h('1'), commit: h('1')},
		{ref: "dev", name: "refs/heads/dev", object: h('2'), commit: h('2')},
		{ref: "feat/x", name: "refs/heads/feat/x", object: h('4'), commit: h('4')},
		{ref: "heads/dev", name: "refs/heads/dev", object: h('2'), commit: h('2')},
		{ref: "v1", name: "refs/tags/v1", object: h('a'), commit: h('b')},
		{ref: "refs/tags/v1", name: "refs/tags/v1", object: h('a'), commit: h('b')},
		{ref: "light", name: "refs/tags/light", object: h('2'), commit: h('2')},
		{ref: "nested/y", name: "refs/tags/nested/y", object: h('5'), commit: h('5')},
		{ref: "refs/pull/1/head", name: "refs/pull/1/head", object: h('3'), commit: h('3')},
		{ref: "refs/heads/both", name: "refs/heads/both", object: h('1'), commit: h('1')},
		{ref: "both", err: "ambiguous"},
		{ref: "nope", err: `"nope" not found on the remote (branches: both, dev, feat/x, main)`},
		{ref: "refs/heads/nope", err: "not found"},
		// Pinned commits: a tip, a tag's commit, and one no ref names.
		{ref: strings.Repeat("2", 40), name: strings.Repeat("2", 40), object: h('2'), commit: h('2'), pinned: true, tip: true},
		{ref: strings.Repeat("B", 40), name: strings.Repeat("b", 40), object: h('a'), commit: h('b'), pinned: true, tip: true},
		{ref: strings.Repeat("9", 40), name: strings.Repeat("9", 40), object: h('9'), commit: h('9'), pinned: true},
	} {
		got, err := resolveRef(rl, tc.ref)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolveRef(%q) = %+v, %v; want error %q", tc.ref, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("resolveRef(%q): %v", tc.ref, err)
			continue
		}
		want := target{name: tc.name, object: tc.object, commit: tc.commit, pinned: tc.pinned, tip: tc.tip}
		if got != want {
			t.Errorf("resolveRef(%q) = %+v, want %+v", tc.ref, got, want)
		}
	}
}

func TestResolveHead(t *testing.T) {
	refs := map[string]plumbing.Hash{"refs/heads/a": h('1'), "refs/heads/master": h('1'), "refs/heads/z": h('2')}
	for _, tc := range []struct {
		name string
		rl   refList
		want string
		err  string
	}{
		{"symref", refList{head: "refs/heads/z", refs: refs}, "refs/heads/z", ""},
		{"symref to nothing", refList{head: "refs/heads/gone", refs: refs}, "", "does not exist"},
		{"guess prefers master", refList{headID: h('1'), refs: refs}, "refs/heads/master", ""},
		{"guess by commit", refList{headID: h('2'), refs: refs}, "refs/heads/z", ""},
		{"detached", refList{headID: h('7'), refs: refs}, "HEAD", ""},
		{"empty repository", refList{}, "", "empty"},
		{"no HEAD", refList{refs: refs}, "", "set Ref"},
	} {
		got, err := resolveRef(tc.rl, "")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %+v, %v; want error %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.name != tc.want {
			t.Errorf("%s: %+v, %v; want %s", tc.name, got, err, tc.want)
		}
	}
}

package desired

import (
	"reflect"
	"strings"
	"testing"
)

func hostDoc(name, role, services string) string {
	return "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: " + name + ", labels: {role: " + role + "}}\nspec:\n  services:\n" + services
}

const (
	svcA = "    - {name: a, replicas: 1}\n"
	svcB = "    - {name: b, replicas: 2}\n"
)

func pollerDefaults(replicas string) string {
	return "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: pollers}\nspec:\n  selector: {matchLabels: {role: poller}}\n  services:\n    - {name: a, replicas: " + replicas + "}\n"
}

func TestDiff(t *testing.T) {
	three := map[string]string{
		"defaults.yaml": pollerDefaults("1"),
		"h1.yaml":       hostDoc("h1", "poller", svcA),
		"h2.yaml":       hostDoc("h2", "poller", svcA),
		"h3.yaml":       hostDoc("h3", "proxy", svcA),
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name       string
		base, head map[string]string
		glob       string
		want       map[string]ChangeKind // hosts with a change
		fields     map[string][]FieldChange
		errAt      string // a head error must start with this
	}{
		{name: "no change", base: three, head: three, want: map[string]ChangeKind{}},
		{
			// The Defaults merge under each Host, which sets replicas
			// itself: a change there changes nothing effective.
			name: "defaults under an overriding host changes nothing",
			base: three, head: with(three, "defaults.yaml", pollerDefaults("5")),
			want: map[string]ChangeKind{},
		},
		{
			name: "defaults selecting 2 of 3 hosts",
			base: three,
			head: with(three, "h1.yaml", hostDoc("h1", "poller", svcB), "h2.yaml", hostDoc("h2", "poller", svcB),
				"defaults.yaml", pollerDefaults("4")),
			want: map[string]ChangeKind{"h1": ChangeModified, "h2": ChangeModified},
			fields: map[string][]FieldChange{"h1": {
				{Field: "spec.services[a].replicas", Old: "1", New: "4"},
				{Field: "spec.services[b]", New: "present", OldAbsent: true},
				// An entry that appears carries its filled-in defaults: it is
				// the effective state that changes.
				{Field: "spec.services[b].drift", New: `"enforce"`, OldAbsent: true},
				{Field: "spec.services[b].driver", New: `"swarm"`, OldAbsent: true},
				{Field: "spec.services[b].maintenance", New: `"stop"`, OldAbsent: true},
				{Field: "spec.services[b].replicas", New: "2", OldAbsent: true},
				{Field: "spec.services[b].stopTimeout", New: `"10s"`, OldAbsent: true},
			}},
		},
		{
			name: "glob narrows the hosts",
			base: three, glob: "h2",
			head: with(three, "h1.yaml", hostDoc("h1", "poller", svcB), "h2.yaml", hostDoc("h2", "poller", svcB)),
			want: map[string]ChangeKind{"h2": ChangeModified},
		},
		{
			name: "host appears and disappears",
			base: three,
			head: with(three, "h3.yaml", "", "h4.yaml", hostDoc("h4", "proxy", svcA)),
			want: map[string]ChangeKind{"h3": ChangeRemoved, "h4": ChangeAdded},
		},
		{
			name: "reordering a list is no change",
			base: with(three, "h1.yaml", hostDoc("h1", "poller", svcA+svcB)),
			head: with(three, "h1.yaml", hostDoc("h1", "poller", svcB+svcA)),
			want: map[string]ChangeKind{},
		},
		{
			name: "a host named only by a Defaults",
			base: three,
			head: with(three, "solo.yaml", "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: solo}\nspec:\n  hosts: [h9]\n  maintenance: true\n"),
			want: map[string]ChangeKind{"h9": ChangeAdded},
		},
		{
			name:  "invalid head",
			base:  three,
			head:  with(three, "h2.yaml", hostDoc("h2", "poller", "    - {name: a, replicas: -1}\n")),
			want:  map[string]ChangeKind{"h2": ChangeRemoved},
			errAt: "h2.yaml:6:27: ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, err := Load(mapFS(tc.base), "")
			if err != nil {
				t.Fatal(err)
			}
			head, err := Load(mapFS(tc.head), "")
			if err != nil {
				t.Fatal(err)
			}
			res, err := Diff(base, head, tc.glob)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]ChangeKind{}
			for _, h := range res.Hosts {
				if h.Change != ChangeNone {
					got[h.Host] = h.Change
				}
				if want, ok := tc.fields[h.Host]; ok && !reflect.DeepEqual(h.Fields, want) {
					t.Errorf("%s fields:\n got %+v\nwant %+v", h.Host, h.Fields, want)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("changed hosts: got %v, want %v", got, tc.want)
			}
			if res.Changed() != (len(tc.want) > 0) {
				t.Errorf("Changed() = %v with %v", res.Changed(), got)
			}
			if tc.errAt == "" {
				if len(res.HeadErrors) > 0 {
					t.Errorf("unexpected head errors: %v", res.HeadErrors)
				}
				return
			}
			if len(res.HeadErrors) == 0 || !strings.HasPrefix(res.HeadErrors[0].Error(), tc.errAt) {
				t.Errorf("head errors %v: want one at %s", res.HeadErrors, tc.errAt)
			}
		})
	}
}

func TestDiffRejectsABadGlob(t *testing.T) {
	r, _ := Load(mapFS(nil), "")
	if _, err := Diff(r, r, "["); err == nil {
		t.Fatal("a malformed --hosts glob was accepted")
	}
}

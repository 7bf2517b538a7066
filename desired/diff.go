package desired

import (
	"encoding/json"
	"fmt"
	"maps"
	pathpkg "path"
	"slices"
	"strings"

	v1 "reconciler.dev/reconciler/api/v1"
)

// HostChange says how one host's effective desired state differs between two
// revisions of the repository.
type HostChange struct {
	Host string `json:"host"`
	// Change is ChangeAdded (nothing applied to the host in base), ChangeRemoved
	// (nothing applies to it in head), ChangeModified or ChangeNone.
	Change ChangeKind    `json:"change"`
	Fields []FieldChange `json:"fields,omitempty"`
}

// ChangeKind classifies a HostChange.
type ChangeKind string

// The kinds of change of a host.
const (
	ChangeNone     ChangeKind = "none"
	ChangeAdded    ChangeKind = "added"
	ChangeRemoved  ChangeKind = "removed"
	ChangeModified ChangeKind = "modified"
)

// FieldChange is one leaf field of an effective state that differs. Old or
// New is empty with Absent set when the field exists on one side only.
type FieldChange struct {
	Field     string `json:"field"` // e.g. spec.services[factory-proxy].replicas
	Old       string `json:"old"`
	New       string `json:"new"`
	OldAbsent bool   `json:"oldAbsent,omitempty"`
	NewAbsent bool   `json:"newAbsent,omitempty"`
}

// DiffResult is what a branch changes: per host, and the head's own errors.
type DiffResult struct {
	Hosts []HostChange `json:"hosts"`
	// HeadErrors are every validation error of the head revision (documents
	// and merged states), positioned as file:line:col.
	HeadErrors v1.ErrorList `json:"headErrors"`
}

// Changed reports whether any host's effective state differs.
func (d *DiffResult) Changed() bool {
	for _, h := range d.Hosts {
		if h.Change != ChangeNone {
			return true
		}
	}
	return false
}

// Declares reports whether anything applies to host: a Host document names
// it or a Defaults selects it.
func (r *Repo) Declares(host string) bool {
	var labels map[string]string
	for _, d := range r.Docs {
		if d.Host != nil && d.Name() == host {
			return true
		}
	}
	for _, d := range r.Docs {
		if d.Defaults != nil && Selects(d.Defaults, host, labels) {
			return true
		}
	}
	return false
}

// NamedHosts is every host a document names: the Host documents, and the
// literal (glob-free) names in the host lists of Defaults. A Defaults that
// selects by pattern or label only adds hosts that some document names,
// since no other host can be known without asking the live fleet.
func (r *Repo) NamedHosts() []string {
	seen := map[string]bool{}
	for _, h := range r.Hosts() {
		seen[h] = true
	}
	for _, d := range r.Docs {
		if d.Defaults == nil {
			continue
		}
		for _, g := range d.Defaults.Spec.Hosts {
			if g != "" && !strings.ContainsAny(g, `*?[\`) {
				seen[g] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Diff compares the effective state of every host that base or head names
// (narrowed to those matching hostGlob, when it is not empty) field by field.
// It is pure: no live system is asked. A host whose effective state in base
// does not merge cleanly counts as absent there, since base is what a
// reviewer compares against, not what the diff judges; head's errors are
// all in HeadErrors.
func Diff(base, head *Repo, hostGlob string) (*DiffResult, error) {
	if hostGlob != "" {
		if _, err := pathpkg.Match(hostGlob, ""); err != nil {
			return nil, fmt.Errorf("--hosts %q: %w", hostGlob, err)
		}
	}
	res := &DiffResult{HeadErrors: head.Validate()}
	seenErr := map[string]bool{}
	for _, e := range res.HeadErrors {
		seenErr[e.Error()] = true
	}
	hosts := map[string]bool{}
	for _, h := range append(base.NamedHosts(), head.NamedHosts()...) {
		if ok, _ := pathpkg.Match(hostGlob, h); hostGlob == "" || ok {
			hosts[h] = true
		}
	}
	for _, h := range slices.Sorted(maps.Keys(hosts)) {
		old := flatState(base, h, nil)
		var herrs v1.ErrorList
		cur := flatState(head, h, &herrs)
		for _, e := range herrs {
			// Hosts named only by a Defaults are not in Validate's set.
			if !seenErr[e.Error()] {
				seenErr[e.Error()] = true
				res.HeadErrors = append(res.HeadErrors, e)
			}
		}
		res.Hosts = append(res.Hosts, compareHost(h, old, cur))
	}
	res.HeadErrors = res.HeadErrors.Sorted()
	if res.HeadErrors == nil {
		res.HeadErrors = v1.ErrorList{}
	}
	return res, nil
}

// compareHost pairs two flattened states (nil: nothing applies).
func compareHost(host string, old, cur map[string]string) HostChange {
	hc := HostChange{Host: host, Change: ChangeNone}
	switch {
	case old == nil && cur == nil:
		return hc
	case old == nil:
		hc.Change = ChangeAdded
	case cur == nil:
		hc.Change = ChangeRemoved
	}
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	for _, f := range slices.Sorted(maps.Keys(keys)) {
		o, inOld := old[f]
		n, inNew := cur[f]
		if inOld && inNew && o == n {
			continue
		}
		hc.Fields = append(hc.Fields, FieldChange{Field: f, Old: o, New: n, OldAbsent: !inOld, NewAbsent: !inNew})
	}
	if hc.Change == ChangeNone && len(hc.Fields) > 0 {
		hc.Change = ChangeModified
	}
	return hc
}

// flatState is host's effective state as leaf paths -> JSON values, or nil
// when nothing applies to the host or its state does not merge (its errors
// then go to errs, when given).
func flatState(r *Repo, host string, errs *v1.ErrorList) map[string]string {
	if !r.Declares(host) {
		return nil
	}
	eff, e := r.Effective(host)
	if len(e) > 0 {
		if errs != nil {
			*errs = append(*errs, e...)
		}
		return nil
	}
	b, err := json.Marshal(struct {
		Labels map[string]string `json:"labels,omitempty"`
		Spec   v1.HostSpec       `json:"spec"`
	}{eff.Labels, eff.Spec})
	if err != nil {
		// The types are plain data: a failure here is a programming error.
		panic(fmt.Sprintf("effective state of %s: %v", host, err))
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		panic(fmt.Sprintf("effective state of %s: %v", host, err))
	}
	out := map[string]string{}
	flatten("", tree, out)
	return out
}

// flatten writes the leaves of a JSON tree. Lists of objects with a name are
// keyed by it (spec.services[factory-proxy].replicas), as merging pairs them,
// so reordering a list is no change and a renamed entry reads as one removed
// and one added; other lists are leaves.
func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, c, out)
		}
	case []any:
		named := len(t) > 0
		for _, c := range t {
			m, ok := c.(map[string]any)
			if !ok {
				named = false
				break
			}
			if _, ok := m["name"].(string); !ok {
				named = false
				break
			}
		}
		if !named {
			b, _ := json.Marshal(t)
			out[prefix] = string(b)
			return
		}
		for _, c := range t {
			m := c.(map[string]any)
			p := fmt.Sprintf("%s[%s]", prefix, m["name"])
			for k, cv := range m {
				if k == "name" {
					continue
				}
				flatten(p+"."+k, cv, out)
			}
			out[p] = "present"
		}
	default:
		b, _ := json.Marshal(t)
		out[prefix] = string(b)
	}
}

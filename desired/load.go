package desired

import (
	"fmt"
	"io/fs"
	pathpkg "path"
	"sort"
	"strings"

	v1 "reconciler.dev/reconciler/api/v1"
)

// Repo is every document of a desired-state folder, parsed and checked one
// by one. Problems do not stop loading: Errors holds all of them, so a single
// run reports everything to fix. A Repo with any error must never be applied
// (not even the parts that look fine): see Valid.
type Repo struct {
	Docs   []*v1.Document
	Errors v1.ErrorList
	Files  int // YAML files read

	// budget bounds what parsing and validating the whole repo may cost
	// (v1.Limits); nil until first used, then DefaultLimits.
	budget *v1.Budget
	// dropped counts errors other repos merged into this one did not keep.
	dropped int
}

// b is the repo's budget, started with the defaults if none was given.
func (r *Repo) b() *v1.Budget {
	if r.budget == nil {
		r.budget = v1.NewBudget(v1.Limits{})
	}
	return r.budget
}

// Over is the bound that stopped loading or validating, or nil.
func (r *Repo) Over() *v1.Error {
	if r.budget == nil {
		return nil
	}
	return r.budget.Over()
}

// Load reads every *.yaml and *.yml file below the root of fsys, recursively
// and in path order (folders whose name starts with "." are skipped).
// display is put in front of file names in positions, so errors read as the
// user named the folder: "examples/factory-proxy/hosts/fp-01.yaml:3:5". The
// error is for I/O only; what the files say is judged in Repo.Errors.
func Load(fsys fs.FS, display string) (*Repo, error) {
	return LoadLimited(fsys, display, v1.Limits{})
}

// LoadLimited is Load within lim: past a bound it stops reading, and the
// repo's errors say which bound (Over), so the revision is refused.
func LoadLimited(fsys fs.FS, display string, lim v1.Limits) (*Repo, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if ext := pathpkg.Ext(p); ext == ".yaml" || ext == ".yml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", display, err)
	}
	sort.Strings(files)
	r := &Repo{Files: len(files), budget: v1.NewBudget(lim)}
	for _, f := range files {
		if r.Over() != nil {
			break
		}
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", joinDisplay(display, f), err)
		}
		r.add(joinDisplay(display, f), data)
	}
	return r, nil
}

// LoadFiles reads the named files, in the order given, into one Repo.
func LoadFiles(names []string, read func(string) ([]byte, error)) (*Repo, error) {
	return LoadFilesLimited(names, read, v1.Limits{})
}

// LoadFilesLimited is LoadFiles within lim (see LoadLimited).
func LoadFilesLimited(names []string, read func(string) ([]byte, error), lim v1.Limits) (*Repo, error) {
	r := &Repo{budget: v1.NewBudget(lim)}
	for _, n := range names {
		if r.Over() != nil {
			break
		}
		data, err := read(n)
		if err != nil {
			return nil, err
		}
		r.Files++
		r.add(n, data)
	}
	return r, nil
}

// Merge adds the documents and errors of another Repo (for `validate A B`).
// A bound the other reached is kept as an error of r.
func (r *Repo) Merge(o *Repo) {
	r.Docs = append(r.Docs, o.Docs...)
	r.Errors = append(r.Errors, o.Errors...)
	if over := o.Over(); over != nil {
		r.Errors = append(r.Errors, over)
	}
	r.dropped += o.dropped
	if o.budget != nil {
		r.dropped += o.budget.Dropped()
	}
	r.Files += o.Files
}

// Valid reports whether the repo may be applied: no document of it has any
// error. One broken file refuses the whole revision, because the broken part
// may be exactly what would have changed this host (a Defaults that no longer
// parses must not silently stop applying).
func (r *Repo) Valid() bool { return len(r.Errors) == 0 && r.Over() == nil }

func (r *Repo) add(name string, data []byte) {
	b := r.b()
	docs, errs := v1.ParseFileBudget(name, data, b)
	r.Errors = append(r.Errors, errs...)
	for _, d := range docs {
		s := d.Spec()
		if !b.Objects(d.Pos, len(s.Services)+len(s.Units)) {
			break
		}
		if errs := v1.ValidateDocument(d); len(errs) > 0 {
			r.Errors = append(r.Errors, b.Keep(errs)...)
			d.Invalid = true
		}
		r.Docs = append(r.Docs, d)
	}
}

// finish sorts errs and caps them at the budget's MaxErrors ("and N more"
// for the rest); the bound that stopped the work, if one did, comes first
// whatever its position, since it is why the rest is incomplete.
func (r *Repo) finish(errs v1.ErrorList) v1.ErrorList {
	b := r.b()
	out := errs.Sorted().Capped(b.Limits().MaxErrors, b.Dropped()+r.dropped)
	if over := b.Over(); over != nil {
		out = append(v1.ErrorList{over}, out...)
	}
	return out
}

func joinDisplay(display, p string) string {
	if display == "" || display == "." {
		return p
	}
	return pathpkg.Join(display, p)
}

// Hosts returns the names of the hosts that have a Host document, sorted.
func (r *Repo) Hosts() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range r.Docs {
		if d.Host != nil && !seen[d.Name()] {
			seen[d.Name()] = true
			out = append(out, d.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Effective is one host's desired state: every Defaults that selects the
// host merged in path order, then its Host, then defaults filled in.
type Effective struct {
	Host    string
	Labels  map[string]string
	Spec    v1.HostSpec
	Origins v1.Origins // where each value came from
	Sources []string   // the documents merged, in order: "file (Kind name)"
}

// Effective merges what applies to host. It fails when nothing applies (a
// typo in --host must not converge a host to "nothing declared"), when two
// Host documents claim the host, or when the merged state is invalid.
func (r *Repo) Effective(host string) (*Effective, v1.ErrorList) {
	eff, errs := r.effective(host)
	if len(errs) > 0 || r.Over() != nil {
		return nil, r.finish(errs)
	}
	return eff, nil
}

func (r *Repo) effective(host string) (*Effective, v1.ErrorList) {
	var hostDoc *v1.Document
	var errs v1.ErrorList
	for _, d := range r.Docs {
		if d.Host == nil || d.Name() != host {
			continue
		}
		if hostDoc != nil {
			errs = append(errs, duplicateHost(d, hostDoc))
			continue
		}
		hostDoc = d
	}
	eff := &Effective{Host: host, Origins: v1.Origins{}}
	if hostDoc != nil {
		eff.Labels = hostDoc.Host.Metadata.Labels
	}
	for _, d := range r.Docs {
		if d.Defaults != nil && Selects(d.Defaults, host, eff.Labels) {
			v1.Merge(&eff.Spec, d.Spec(), d.PosOf, eff.Origins)
			eff.Sources = append(eff.Sources, fmt.Sprintf("%s (Defaults %s)", d.Pos.File, d.Name()))
		}
	}
	partial := false
	for _, d := range r.Docs {
		if d.Defaults != nil && d.Invalid && Selects(d.Defaults, host, eff.Labels) {
			partial = true
		}
	}
	if hostDoc != nil {
		v1.Merge(&eff.Spec, hostDoc.Spec(), hostDoc.PosOf, eff.Origins)
		eff.Sources = append(eff.Sources, fmt.Sprintf("%s (Host %s)", hostDoc.Pos.File, host))
		partial = partial || hostDoc.Invalid
	}
	if len(eff.Sources) == 0 {
		errs = append(errs, &v1.Error{Msg: fmt.Sprintf("no Host document for host %q and no Defaults select it (hosts declared: %s)",
			host, strings.Join(r.Hosts(), ", "))})
		return nil, errs
	}
	v1.SetDefaults(&eff.Spec)
	errs = append(errs, v1.ValidateEffective(&eff.Spec, eff.Origins.Locate, partial)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return eff, nil
}

func duplicateHost(d, first *v1.Document) *v1.Error {
	return &v1.Error{
		Pos:  d.PosOf("metadata.name"),
		Path: "metadata.name",
		Msg:  fmt.Sprintf("host %q is already declared at %s", d.Name(), first.PosOf("metadata.name")),
	}
}

// Selects reports whether a Defaults document applies to a host: every
// criterion it gives (host globs, label selector) must match.
func Selects(d *v1.Defaults, host string, labels map[string]string) bool {
	if len(d.Spec.Hosts) == 0 && d.Spec.Selector == nil {
		return false
	}
	if len(d.Spec.Hosts) > 0 {
		matched := false
		for _, g := range d.Spec.Hosts {
			if ok, _ := pathpkg.Match(g, host); ok {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	if d.Spec.Selector != nil {
		if len(d.Spec.Selector.MatchLabels) == 0 {
			return false
		}
		for k, v := range d.Spec.Selector.MatchLabels {
			if lv, ok := labels[k]; !ok || lv != v {
				return false
			}
		}
	}
	return true
}

// Validate checks the whole repo: every document (already done by Load),
// no host declared twice, and the merged state of every declared host.
// A repo that hit a bound while loading is not merged: what was read of it
// is incomplete, and the bound is the error that matters.
func (r *Repo) Validate() v1.ErrorList {
	errs := append(v1.ErrorList(nil), r.Errors...)
	b := r.b()
	if b.Over() == nil {
		for _, h := range r.Hosts() {
			if b.TimeUp(v1.Pos{File: r.Docs[0].Pos.File}) {
				break
			}
			_, e := r.effective(h)
			errs = append(errs, b.Keep(e)...)
		}
	}
	return r.finish(errs)
}

// Summary counts what the repo declares: hosts, and the services and units
// of their merged states.
func (r *Repo) Summary() (hosts, services, units int) {
	for _, h := range r.Hosts() {
		eff, errs := r.Effective(h)
		if len(errs) > 0 {
			continue
		}
		hosts++
		services += len(eff.Spec.Services)
		units += len(eff.Spec.Units)
	}
	return hosts, services, units
}

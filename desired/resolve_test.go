package desired

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"

	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
)

type oneSource struct {
	art  source.Artifact
	err  error
	hist error // History's error; nil answers that the head descends
}

func (s *oneSource) Fetch(context.Context) (source.Artifact, bool, error) { return s.art, true, s.err }
func (s *oneSource) Last(context.Context) (source.Artifact, error)        { return s.art, nil }
func (s *oneSource) String() string                                       { return "mem://one" }
func (s *oneSource) History(_ context.Context, req source.HistoryRequest) (source.History, error) {
	return source.History{Known: true, Descends: true, Head: source.Commit{ID: req.Head}}, s.hist
}

func artifact(id, doc string) source.Artifact {
	return source.Artifact{Revision: source.Revision{ID: id}, FS: fstest.MapFS{"h1.yaml": {Data: []byte(doc)}}}
}

// baseID is a commit id, so the anti-rollback check asks for history.
const baseID = "1111111111111111111111111111111111111111"

const validHost = "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: h1\nspec:\n  services:\n    - name: a\n      replicas: 1\n"

// Each step of a resolution fails with its own type, so callers (the agent
// and the one-shot commands) decide by type.
func TestResolveStepsFailWithTheirTypes(t *testing.T) {
	ctx := context.Background()
	anti := &trust.Policy{Mode: trust.ModeOff} // anti-rollback only: needs the history
	cases := []struct {
		name  string
		src   *oneSource
		trust *trust.Policy
		opts  ResolveOptions
		check func(*Resolution, error) bool
	}{
		{"fetch", &oneSource{err: errors.New("git down")}, nil, ResolveOptions{},
			func(_ *Resolution, err error) bool { var fe *FetchError; return errors.As(err, &fe) }},
		{"unchecked", &oneSource{art: artifact("b", validHost), hist: errors.New("cannot deepen")}, anti, ResolveOptions{Base: baseID},
			func(r *Resolution, err error) bool { var ue *UncheckedError; return errors.As(err, &ue) && !r.Judged }},
		{"invalid", &oneSource{art: artifact("b", "kind: Host\nspec: {services: [{name: a, replicas: -1}]}\n")}, nil, ResolveOptions{},
			func(r *Resolution, err error) bool {
				var ie *InvalidError
				return errors.As(err, &ie) && r.Snapshot == nil && r.Artifact.Revision.ID == "b"
			}},
		{"judged already", &oneSource{art: artifact("b", validHost)}, nil, ResolveOptions{Fetched: func(source.Artifact) bool { return false }},
			func(r *Resolution, err error) bool { return err == nil && r.Snapshot == nil }},
		{"trusted and loaded", &oneSource{art: artifact("b", validHost)}, anti, ResolveOptions{Base: baseID},
			func(r *Resolution, err error) bool {
				return err == nil && r.Judged && r.Snapshot != nil && r.Snapshot.Changed && len(r.Snapshot.Effective.Spec.Services) == 1
			}},
	}
	for _, c := range cases {
		r := &Resolver{Source: c.src, Host: "h1", Trust: c.trust}
		res, err := r.Resolve(ctx, c.opts)
		if res == nil || !c.check(res, err) {
			t.Errorf("%s: resolution %+v, error %v", c.name, res, err)
		}
	}
}

package desired

import (
	"context"
	"errors"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
)

// Resolver is the one way from a source to a host's desired state, for the
// agent and for the one-shot commands (plan, apply, validate --source) alike:
// fetch (one ref lookup when nothing moved), the trust check (signatures,
// descent from the revision in force) before any file is parsed, then load,
// validate and merge for the host. Each step that fails says so by the type
// of its error, so callers decide with errors.As, never by its text:
//
//   - *FetchError: the source could not be read; nothing was judged.
//   - *UncheckedError: the trust check could not reach a verdict (git
//     unreachable while deepening the history, a key file unreadable).
//   - *trust.Refusal: the trust check refused the revision.
//   - *InvalidError: the revision's documents are wrong (terminal for it).
//   - any other error: the revision could not be read.
type Resolver struct {
	Source source.Source
	// Host is the host whose snapshot is made; "" stops after the trust
	// check (validate --source loads the whole repository itself).
	Host string
	// Trust is checked before any file is parsed; nil checks nothing.
	Trust *trust.Policy
	// Timeout bounds the fetch and, apart, the trust check (0: ctx only).
	Timeout time.Duration
	// Limits bound parsing and validating (zero fields: the defaults); the
	// source's own Options.Limits bound reading.
	Limits v1.Limits
	// Reach, when set, are what the host's snapshot may reach (see
	// Snapshot.Confine): more is an *InvalidError, the revision refused
	// whole.
	Reach *v1.Reach
}

// Resolution is what Resolve got as far as it went.
type Resolution struct {
	Artifact source.Artifact
	Changed  bool // the source moved since its last fetch
	// Judged is true when the trust policy reached a verdict (trusted or
	// refused); Verdict says what it checked.
	Judged  bool
	Verdict trust.Verdict
	// Snapshot is the host's desired state, nil when Resolve stopped short.
	Snapshot *Snapshot
}

// FetchError says the source could not be read.
type FetchError struct{ Err error }

func (e *FetchError) Error() string { return e.Err.Error() }
func (e *FetchError) Unwrap() error { return e.Err }

// UncheckedError says the trust check of a revision could not be carried
// out: no verdict, so the next attempt may succeed.
type UncheckedError struct {
	Revision source.Revision
	Err      error
}

func (e *UncheckedError) Error() string { return e.Err.Error() }
func (e *UncheckedError) Unwrap() error { return e.Err }

// ResolveOptions steer one Resolve.
type ResolveOptions struct {
	// Base is the revision in force, which a new one must descend from
	// (trust.Policy); "" for a one-shot command.
	Base string
	// Fetched, when set, is told of the fetched revision before it is
	// judged; returning false stops there (the agent judged it already).
	Fetched func(source.Artifact) bool
}

// Resolve fetches, judges and loads; see Resolver. The Resolution is never
// nil and holds what was done before any error.
func (r *Resolver) Resolve(ctx context.Context, o ResolveOptions) (*Resolution, error) {
	res := &Resolution{}
	fctx, cancel := r.bounded(ctx)
	art, changed, err := r.Source.Fetch(fctx)
	cancel()
	if id := RefusedAtFetch(err); id != "" {
		// Refused from what the source could see before reading its
		// files (the commit object's signature, a file's size): a verdict
		// on that revision, not a failing source.
		res.Artifact.Revision.ID = id
		if o.Fetched != nil && !o.Fetched(res.Artifact) {
			return res, nil
		}
		res.Judged = trust.IsRefusal(err)
		return res, err
	}
	if err != nil {
		return res, &FetchError{Err: err}
	}
	res.Artifact, res.Changed = art, changed
	if o.Fetched != nil && !o.Fetched(art) {
		return res, nil
	}
	if r.Trust != nil {
		jctx, cancel := r.bounded(ctx)
		res.Verdict, err = r.Trust.Check(jctx, r.Source, o.Base, art.Revision)
		cancel()
		if err != nil && !trust.IsRefusal(err) {
			return res, &UncheckedError{Revision: art.Revision, Err: err}
		}
		res.Judged = true
		if err != nil {
			return res, err
		}
	}
	if r.Host == "" {
		return res, nil
	}
	snap, err := FromArtifactLimited(art, r.Host, r.Limits)
	if err == nil && r.Reach != nil {
		err = snap.Confine(*r.Reach)
	}
	if err != nil {
		return res, err
	}
	snap.Changed = changed
	res.Snapshot = snap
	return res, nil
}

// RefusedAtFetch is the commit a Fetch error refuses (a *trust.Refusal
// from the source's CommitCheck, a *source.LimitError on a commit's
// content), or "" when the error is not a verdict on a commit.
func RefusedAtFetch(err error) string {
	var le *source.LimitError
	if errors.As(err, &le) && le.Commit != "" {
		return le.Commit
	}
	var tr *trust.Refusal
	if errors.As(err, &tr) && tr.Commit != "" {
		return tr.Commit
	}
	return ""
}

func (r *Resolver) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.Timeout > 0 {
		return context.WithTimeout(ctx, r.Timeout)
	}
	return context.WithCancel(ctx)
}

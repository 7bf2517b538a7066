package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"reconciler.dev/reconciler/internal/logctx"
)

// gitSource is a Source over a git repository, with a cache of fetched
// commits under Options.CacheDir.
type gitSource struct {
	opts   Options
	loc    location
	cache  cacheDir
	remote remote

	mu sync.Mutex // one Fetch or Last at a time in this process: they share the cache

	verified verifiedTrees // trees whose blobs were all verified (gitfs.go)
	// overBound remembers commits refused for a bound on their content,
	// so a poll that finds the ref still there does no work on them again.
	// Bounds do not change while the process runs.
	overBound map[string]error
}

// lock serialises use of the cache folder between goroutines and processes;
// with ctx already done it takes nothing and says so, the subject named.
func (s *gitSource) lock(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, s.errorf("%w", err)
	}
	s.mu.Lock()
	unlock, err := lockDir(ctx, s.cache.dir)
	if err != nil {
		s.mu.Unlock()
		return nil, s.errorf("%w", err)
	}
	return func() { unlock(); s.mu.Unlock() }, nil
}

func (s *gitSource) String() string { return s.loc.redacted }

// refDesc names the ref in errors the way the operator wrote it.
func (s *gitSource) refDesc() string {
	if s.opts.Ref == "" {
		return "HEAD"
	}
	return s.opts.Ref
}

func (s *gitSource) errorf(format string, args ...any) error {
	return fmt.Errorf("git source %s ref %s: "+format, append([]any{s.loc.redacted, s.refDesc()}, args...)...)
}

func (s *gitSource) Last(ctx context.Context) (Artifact, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return Artifact{}, err
	}
	defer unlock()
	st, err := s.cache.readState()
	if err != nil {
		return Artifact{}, s.errorf("%w: %v", ErrNoRevision, err)
	}
	a, err := s.artifact(st)
	if err != nil {
		if isVerdict(err) {
			return Artifact{}, s.errorf("%w", err)
		}
		return Artifact{}, s.errorf("%w: the cached commit %s is damaged (a Fetch rebuilds it): %w", ErrNoRevision, st.Commit, err)
	}
	return a, nil
}

func (s *gitSource) Fetch(ctx context.Context) (a Artifact, changed bool, err error) {
	start, reads := time.Now(), blobReads.Load()
	defer func() {
		logctx.From(ctx).Debug("source fetched", "source", s.loc.redacted, "revision", a.Revision.ID, "changed", changed,
			"blobs_read", blobReads.Load()-reads, "took", time.Since(start), "err", err)
	}()
	unlock, err := s.lock(ctx)
	if err != nil {
		return Artifact{}, false, err
	}
	defer unlock()
	prev, err := s.cache.readState()
	trusted := err == nil // prev's commit may be offered to the server as a "have"
	if !trusted {
		// A missing or damaged state file says nothing about the objects
		// next to it, so they are not trusted either.
		prev = state{}
		if err := s.cache.reset(); err != nil {
			return Artifact{}, false, s.errorf("reset cache: %w", err)
		}
	}

	if trusted && strings.EqualFold(s.opts.Ref, prev.Commit) {
		// A pinned commit never moves: once it is cached, there is
		// nothing to ask the server.
		if a, err := s.artifact(prev); err == nil {
			return a, false, nil
		}
	}

	lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	sess, err := s.remote.lookup(lctx)
	cancel()
	if err != nil {
		return Artifact{}, false, s.errorf("list refs: %w", err)
	}
	defer func() { sess.close() }()
	t, err := resolveRef(sess.refs(), s.opts.Ref)
	if err != nil {
		return Artifact{}, false, s.errorf("%w", err)
	}
	if err := s.overBound[t.object.String()]; err != nil {
		return Artifact{}, false, err // refused before, for good
	}

	if trusted && (t.object.String() == prev.Object || t.commit.String() == prev.Commit) {
		a, err := s.artifact(prev)
		if err == nil {
			return a, false, nil
		}
		if isVerdict(err) {
			return Artifact{}, false, s.errorf("%w", err)
		}
		// Damaged: rebuild it from the remote below, from nothing.
		trusted = false
		if err := s.cache.reset(); err != nil {
			return Artifact{}, false, s.errorf("reset cache: %w", err)
		}
	}

	var haves []plumbing.Hash
	if trusted {
		haves = append(haves, plumbing.NewHash(prev.Commit))
	}
	st, a, err := s.fetchTarget(ctx, &sess, t, haves)
	if err != nil && trusted && ctx.Err() == nil && !isVerdict(err) {
		// What we already had may be what is broken (the server leaves
		// out what our haves claim we hold): start over from nothing, once,
		// in a new session because ssh allows one fetch per session.
		if rerr := s.cache.reset(); rerr != nil {
			return Artifact{}, false, s.errorf("%w (and reset cache: %v)", err, rerr)
		}
		sess.close()
		lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		sess, err = s.remote.lookup(lctx)
		cancel()
		if err != nil {
			sess = closedSession{}
			return Artifact{}, false, s.errorf("list refs: %w", err)
		}
		st, a, err = s.fetchTarget(ctx, &sess, t, nil)
	}
	if err != nil {
		err = s.errorf("%w", err)
		var le *LimitError
		if errors.As(err, &le) && le.Commit != "" {
			if s.overBound == nil || len(s.overBound) > maxVerifiedTrees {
				s.overBound = map[string]error{}
			}
			s.overBound[t.object.String()] = err
		}
		return Artifact{}, false, err
	}
	if err := s.cache.writeState(st); err != nil {
		return Artifact{}, false, s.errorf("save cache state: %w", err)
	}
	return a, st.Commit != prev.Commit, nil
}

// fetchTarget makes t's commit available in the cache (from the cache
// itself when it is already there, else from the remote) and returns the
// verified artifact. *sess may be replaced by a fresh session: one
// upload-pack per session is all the ssh transport allows.
func (s *gitSource) fetchTarget(ctx context.Context, sess *session, t target, haves []plumbing.Hash) (state, Artifact, error) {
	sto, err := s.cache.open()
	if err != nil {
		return state{}, Artifact{}, err
	}
	st := state{URL: s.loc.redacted, Ref: t.name, Object: t.object.String(), Time: time.Now().UTC()}

	// Back to a commit fetched before (a revert, or a path that was
	// missing): no need to download it again.
	if c, err := peelStored(sto, t.object); err == nil {
		st.Commit = c.String()
		a, err := s.artifact(st)
		if err == nil || isVerdict(err) {
			return st, a, err
		}
		// Damaged: fetch it; verification decides again afterwards.
	}

	fctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req := fetchReq{wants: []plumbing.Hash{t.object}, shallow: true, haves: haves, unadvertised: t.pinned && !t.tip, check: s.opts.CommitCheck}
	err = safely(func() error { return (*sess).fetch(fctx, sto, req) })
	if errors.Is(err, errBareHashRefused) {
		// Documented fallback for a pinned commit no ref points to: fetch
		// every branch and tag in full and look for it there.
		err = s.fetchAll(fctx, sess, sto)
	}
	var le *LimitError
	if errors.As(err, &le) && le.Bound == BoundFileBytes && le.Commit == "" && !t.commit.IsZero() {
		// An object of the pack over the bound: a verdict on the commit
		// it came with, not a fault of the server.
		le.Commit = t.commit.String()
	}
	if err != nil {
		if t.pinned && errors.Is(err, plumbing.ErrObjectNotFound) {
			return state{}, Artifact{}, fmt.Errorf("commit %s is not on the remote: %w", t.object, err)
		}
		return state{}, Artifact{}, fmt.Errorf("fetch %s: %w", t.object, err)
	}

	commit, err := peelStored(sto, t.object)
	if err != nil {
		if t.pinned {
			return state{}, Artifact{}, fmt.Errorf("commit %s is not on the remote (or not reachable from its branches and tags): %w", t.object, err)
		}
		return state{}, Artifact{}, err
	}
	st.Commit = commit.String()
	a, err := s.artifact(st)
	if err != nil {
		return state{}, Artifact{}, err
	}
	return st, a, nil
}

func (s *gitSource) fetchAll(ctx context.Context, sess *session, sto *filesystem.Storage) error {
	(*sess).close()
	ns, err := s.remote.lookup(ctx)
	if err != nil {
		// Keep *sess closable by the caller's defer.
		*sess = closedSession{}
		return err
	}
	*sess = ns
	rl := ns.refs()
	var wants []plumbing.Hash
	seen := map[plumbing.Hash]bool{}
	for _, name := range sortedNames(rl.refs) {
		h := rl.refs[name]
		if (strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/")) && !seen[h] {
			seen[h] = true
			wants = append(wants, h)
		}
	}
	sort.Slice(wants, func(i, j int) bool { return wants[i].String() < wants[j].String() })
	return safely(func() error { return ns.fetch(ctx, sto, fetchReq{wants: wants}) })
}

type closedSession struct{}

func (closedSession) refs() refList { return refList{} }
func (closedSession) fetch(context.Context, *filesystem.Storage, fetchReq) error {
	return errors.New("session closed")
}
func (closedSession) close() {}

// artifact opens the cache and verifies st's commit and every object under
// Options.Path before handing them out: the cache is never trusted blindly.
func (s *gitSource) artifact(st state) (Artifact, error) {
	sto, err := s.cache.open()
	if err != nil {
		return Artifact{}, err
	}
	var a Artifact
	err = safely(func() error {
		var err error
		a, err = buildGitArtifact(sto, plumbing.NewHash(st.Commit), st.Ref, s.opts.Path,
			buildOpts{lim: s.opts.Limits, check: s.opts.CommitCheck, verified: &s.verified})
		return err
	})
	return a, err
}

// safely turns a panic inside go-git, which damaged files can provoke, into
// an error: a broken cache is rebuilt, never fatal.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged object store: %v", r)
		}
	}()
	return f()
}

// isVerdict: err is about what the commit holds (a path that is not a
// folder, a file over a bound, a refused signature), not damage to the
// cache: fetching it again would give the same answer.
func isVerdict(err error) bool {
	return errors.As(err, new(*pathError)) || errors.Is(err, ErrLimit) || errors.As(err, new(*commitRefused))
}

// commitRefused: Options.CommitCheck said no.
type commitRefused struct{ err error }

func (e *commitRefused) Error() string { return e.err.Error() }
func (e *commitRefused) Unwrap() error { return e.err }

// pathError: Options.Path is not a folder at a commit. Not damage, so the
// cache is kept.
type pathError struct {
	path, commit, why string
}

func (e *pathError) Error() string {
	return fmt.Sprintf("path %q %s at commit %s", e.path, e.why, e.commit)
}

func (e *pathError) Unwrap() error { return fs.ErrNotExist }

package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// History: how a fetched commit relates to an earlier one (the last one the
// agent applied), for the trust checks of package desired/trust: does the
// new commit descend from the old one (anti-rollback), and which commits
// lie between them (strict signature checks).
//
// Fetch stays shallow (depth 1). The cache keeps every commit fetched, so in
// the common case (the agent saw the previous commit, and the new one is
// its child) the answer comes from the cache with no network I/O at all.
// Only when the cache cannot tell (several commits were pushed between two
// polls, or the history was rewritten) is the ref's history fetched deeper,
// step by step: depth 2, 4, 8 ... up to HistoryRequest.MaxDepth, each step
// one ref lookup and one fetch, until the walk from the new commit meets
// the old one or the history ends. A deepening fetch sends no "have"s: the
// server sends every commit within the depth with its tree (desired-state
// repositories are small), so the commits behind the old one are there too,
// which is what tells a side branch merged in from one that is new.
//
// Nothing here runs on an unchanged poll: the caller asks only about a
// commit it has not judged yet.

// DefaultHistoryDepth bounds how deep History fetches and walks when
// HistoryRequest.MaxDepth is 0.
const DefaultHistoryDepth = 1024

// Commit is one commit object from the cache, checked against its hash.
type Commit struct {
	ID      string
	Parents []string
	// Raw is the object's content exactly as its id is computed over it;
	// a signature covers it without its gpgsig header.
	Raw []byte
}

// HistoryRequest asks how Head relates to Base.
type HistoryRequest struct {
	Head string // a commit a Fetch returned (full hash)
	Base string // an earlier commit, e.g. the last one applied; "" for none
	// All asks for every commit between them (git rev-list Base..Head), not
	// only whether Head descends from Base.
	All bool
	// MaxDepth bounds the history fetched and walked from Head, in commits
	// (default DefaultHistoryDepth).
	MaxDepth int
}

// History is what History found.
type History struct {
	Head Commit
	// Descends: Base is Head or an ancestor of it.
	Descends bool
	// Known: Descends is certain. False when MaxDepth was reached without
	// meeting Base and with history left below.
	Known bool
	// HeadBeforeBase: Head is an ancestor of Base (the ref went back).
	// Only set when the cache shows it; false says nothing.
	HeadBeforeBase bool
	// Commits, with All and Descends: every commit reachable from Head and
	// not from Base, Head first. Without Base: Head alone.
	Commits []Commit
	// Complete: Commits holds all of them (MaxDepth was not reached first).
	Complete bool
	// Depth is how deep the last deepening fetch went (0: the cache told).
	Depth int
	// Fetches counts the deepening fetches (one ref lookup and one fetch each).
	Fetches int
}

// Historian is implemented by the git sources Open returns; plain folders
// have no history.
type Historian interface {
	History(ctx context.Context, req HistoryRequest) (History, error)
}

// ErrRefMoved: the ref no longer points at the commit asked about, so its
// history cannot be fetched by the ref; the next Fetch returns the new
// commit.
var ErrRefMoved = errors.New("the ref moved on while its history was being read")

// nodeCap bounds the commits one walk visits per MaxDepth step, whatever
// the shape of the history (merges).
const nodeCap = 16

func (s *gitSource) History(ctx context.Context, req HistoryRequest) (History, error) {
	req.Head, req.Base = strings.ToLower(req.Head), strings.ToLower(req.Base)
	if !IsCommitID(req.Head) || (req.Base != "" && !IsCommitID(req.Base)) {
		return History{}, s.errorf("history: %q..%q: not full commit hashes", req.Base, req.Head)
	}
	if req.MaxDepth <= 0 {
		req.MaxDepth = DefaultHistoryDepth
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return History{}, err
	}
	defer unlock()
	sto, err := s.cache.open()
	if err != nil {
		return History{}, s.errorf("%w", err)
	}
	head := plumbing.NewHash(req.Head)
	hc, err := readCommit(sto, head)
	if err != nil {
		return History{}, s.errorf("history: commit %s is not in the cache (fetch it first): %w", req.Head, err)
	}
	out := History{Head: hc, Commits: []Commit{hc}, Complete: true}
	if req.Base == "" {
		return out, nil
	}
	if req.Base == req.Head {
		out.Descends, out.Known, out.Commits = true, true, nil
		return out, nil
	}
	base := plumbing.NewHash(req.Base)
	w := newWalk(sto, head, base, req.All, req.MaxDepth)
	err = w.run()
	for err == nil && w.needMore() && out.Depth < req.MaxDepth {
		out.Depth = min(max(2*out.Depth, 2), req.MaxDepth)
		if err = s.deepen(ctx, sto, head, out.Depth); err != nil {
			return History{}, s.errorf("history of %s, depth %d: %w", req.Head[:12], out.Depth, err)
		}
		out.Fetches++
		w = newWalk(sto, head, base, req.All, req.MaxDepth)
		err = w.run()
	}
	if err != nil {
		if ctx.Err() == nil {
			// A damaged object: throw the cache away; the next Fetch
			// starts over and the commit is judged again.
			if rerr := s.cache.reset(); rerr != nil {
				return History{}, s.errorf("history: %w (and reset cache: %v)", err, rerr)
			}
			return History{}, s.errorf("history: the cache was damaged and is rebuilt at the next fetch: %w", err)
		}
		return History{}, s.errorf("history: %w", err)
	}
	out.Descends = w.found
	out.Known = w.found || (!w.missing && !w.truncated)
	out.HeadBeforeBase = w.headInBase
	out.Commits, out.Complete = nil, false
	if w.found {
		out.Commits = w.commits
		out.Complete = !w.missing && !w.truncated
	}
	return out, nil
}

// deepen fetches the ref's history to depth from the remote, after
// checking that the ref still points at head.
func (s *gitSource) deepen(ctx context.Context, sto *filesystem.Storage, head plumbing.Hash, depth int) error {
	lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	sess, err := s.remote.lookup(lctx)
	cancel()
	if err != nil {
		return fmt.Errorf("list refs: %w", err)
	}
	defer sess.close()
	t, err := resolveRef(sess.refs(), s.opts.Ref)
	if err != nil {
		return err
	}
	if t.commit != head {
		if c, err := peelStored(sto, t.object); err != nil || c != head {
			return fmt.Errorf("%w: %s now points at %s", ErrRefMoved, t.name, t.object)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req := fetchReq{wants: []plumbing.Hash{t.object}, shallow: true, depth: depth, unadvertised: t.pinned && !t.tip}
	if err := safely(func() error { return sess.fetch(fctx, sto, req) }); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	return normalizeShallow(sto)
}

// normalizeShallow drops the shallow mark of every commit whose parents
// are all in the cache now: the marks must say exactly where the cached
// history is cut, or a later fetch's "have"s would claim more than the
// cache holds.
func normalizeShallow(sto *filesystem.Storage) error {
	cur := shallowList(sto)
	var keep []plumbing.Hash
	for _, h := range cur {
		c, err := readCommit(sto, h)
		if err != nil {
			keep = append(keep, h) // not ours to judge; harmless
			continue
		}
		for _, p := range c.Parents {
			if sto.HasEncodedObject(plumbing.NewHash(p)) != nil {
				keep = append(keep, h)
				break
			}
		}
	}
	if len(keep) == len(cur) {
		return nil
	}
	return sto.SetShallow(keep)
}

// readCommit reads one commit from the cache, verified against its hash.
func readCommit(sto storer.EncodedObjectStorer, h plumbing.Hash) (c Commit, err error) {
	err = safely(func() error {
		o, err := readVerified(sto, h)
		if err != nil {
			return err
		}
		if o.Type() != plumbing.CommitObject {
			return fmt.Errorf("%s is a %s, not a commit", h, o.Type())
		}
		var dc object.Commit
		if err := dc.Decode(o); err != nil {
			return fmt.Errorf("commit %s: %w", h, err)
		}
		raw, err := readAllObject(o)
		if err != nil {
			return err
		}
		c = Commit{ID: h.String(), Raw: raw}
		for _, p := range dc.ParentHashes {
			c.Parents = append(c.Parents, p.String())
		}
		return nil
	})
	return c, err
}

func readAllObject(o *plumbing.MemoryObject) ([]byte, error) {
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// relTo is p relative to sub ("." when they are the same), as treeBudget
// names files: it puts sub back in front.
func relTo(sub, p string) string {
	if sub == "." {
		return p
	}
	if p == sub {
		return "."
	}
	return strings.TrimPrefix(p, sub+"/")
}

// walk is one look at the cached history between head and base.
type walk struct {
	sto      storer.EncodedObjectStorer
	head     plumbing.Hash
	base     plumbing.Hash
	all      bool
	maxDepth int

	found      bool     // base reached from head
	missing    bool     // a commit walked has a parent the cache lacks
	truncated  bool     // maxDepth (or the node cap) reached with history left
	headInBase bool     // head is an ancestor of base
	root       bool     // a commit walked has no parents
	commits    []Commit // walked, not reachable from base; head first
}

func newWalk(sto storer.EncodedObjectStorer, head, base plumbing.Hash, all bool, maxDepth int) *walk {
	return &walk{sto: sto, head: head, base: base, all: all, maxDepth: maxDepth}
}

// needMore: a deeper fetch could change the answer.
func (w *walk) needMore() bool {
	return w.missing && !w.truncated && (!w.found || w.all)
}

// run walks from head, first stopping only at base (enough when the
// answer is near, the usual case), then, when that leaves the answer
// open, stopping at every cached ancestor of base too: a path that enters
// base's own history can never lead to base, and its commits are not
// "between".
func (w *walk) run() error {
	if err := w.bfs(map[plumbing.Hash]bool{w.base: true}); err != nil {
		return err
	}
	// With every path from head ending at base (no root among the commits
	// walked, none missing), none of them can be an ancestor of base.
	if w.found && (!w.all || (!w.missing && !w.truncated && !w.root)) {
		return nil
	}
	stop, err := w.ancestorsOfBase()
	if err != nil {
		return err
	}
	w.headInBase = stop[w.head]
	return w.bfs(stop)
}

func (w *walk) present(h plumbing.Hash) bool { return w.sto.HasEncodedObject(h) == nil }

// bfs walks breadth first from head, not going past commits in stop.
func (w *walk) bfs(stop map[plumbing.Hash]bool) error {
	w.found, w.missing, w.truncated, w.root, w.commits = false, false, false, false, nil
	type item struct {
		h    plumbing.Hash
		dist int
	}
	seen := map[plumbing.Hash]bool{w.head: true}
	queue := []item{{w.head, 0}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if it.h == w.base || stop[it.h] {
			w.found = w.found || it.h == w.base
			continue
		}
		if len(w.commits) >= nodeCap*w.maxDepth {
			w.truncated = true
			return nil
		}
		c, err := readCommit(w.sto, it.h)
		if err != nil {
			return err
		}
		w.commits = append(w.commits, c)
		w.root = w.root || len(c.Parents) == 0
		for _, p := range c.Parents {
			ph := plumbing.NewHash(p)
			if seen[ph] {
				continue
			}
			seen[ph] = true
			switch {
			case ph == w.base:
				w.found = true
			case stop[ph]:
			case it.dist+1 >= w.maxDepth:
				w.truncated = true // beyond the bound
			case !w.present(ph):
				w.missing = true
			default:
				queue = append(queue, item{ph, it.dist + 1})
			}
		}
	}
	return nil
}

// ancestorsOfBase is base and every ancestor of it the cache holds
// (bounded; a bound reached only makes the walk from head look further).
func (w *walk) ancestorsOfBase() (map[plumbing.Hash]bool, error) {
	out := map[plumbing.Hash]bool{w.base: true}
	if !w.present(w.base) {
		return out, nil
	}
	queue := []plumbing.Hash{w.base}
	for len(queue) > 0 && len(out) < 4*nodeCap*w.maxDepth {
		h := queue[0]
		queue = queue[1:]
		c, err := readCommit(w.sto, h)
		if err != nil {
			return nil, err
		}
		for _, p := range c.Parents {
			ph := plumbing.NewHash(p)
			if !out[ph] && w.present(ph) {
				out[ph] = true
				queue = append(queue, ph)
			}
		}
	}
	return out, nil
}

// copyOpts narrow and bound what copyHistory copies.
type copyOpts struct {
	sub   string // Options.Path: blobs outside it are not copied
	lim   Limits
	check func(Commit) error // judges each wanted commit before its tree is walked
}

// copyHistory is the file:// form of a fetch: every commit within depth
// of each want (through annotated tags; depth 1 is the commit alone), with
// its tree under o.sub (and the trees on the way there), in one pack of
// what dst lacks; commits whose parents stay outside are marked shallow.
// Sizes are read from object headers and checked before anything is
// copied; a wanted commit goes to o.check before its tree is walked.
func copyHistory(ctx context.Context, src storer.EncodedObjectStorer, dst *filesystem.Storage, wants []plumbing.Hash, depth int, o copyOpts) error {
	if o.sub == "" {
		o.sub = "."
	}
	seen := map[plumbing.Hash]bool{}
	var todo []plumbing.Hash
	need := func(h plumbing.Hash) {
		if !seen[h] {
			seen[h] = true
			if dst.HasEncodedObject(h) != nil {
				todo = append(todo, h)
			}
		}
	}
	var b *treeBudget
	var walkTree func(th plumbing.Hash, dir string) error
	walkTree = func(th plumbing.Hash, dir string) error {
		if seen[th] {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		under := o.sub == "." || dir == o.sub || strings.HasPrefix(dir, o.sub+"/")
		if under {
			if err := b.charge(src, th, relTo(o.sub, dir)); err != nil {
				return err
			}
		} else if size, err := objectSize(src, th); err != nil {
			return fmt.Errorf("tree %s: %w", th, err)
		} else if size > o.lim.MaxFileBytes {
			return &LimitError{Bound: BoundFileBytes, What: "tree " + dir, Size: size, Limit: o.lim.MaxFileBytes}
		}
		need(th)
		t, err := object.GetTree(src, th)
		if err != nil {
			return fmt.Errorf("tree %s: %w", th, err)
		}
		for _, e := range t.Entries {
			p := path.Join(dir, e.Name)
			if !under && p != o.sub && !strings.HasPrefix(o.sub, p+"/") {
				continue // beside the path: not ours to read
			}
			switch e.Mode {
			case filemode.Dir:
				if err := walkTree(e.Hash, p); err != nil {
					return err
				}
			case filemode.Submodule:
			default:
				if !under || seen[e.Hash] {
					continue
				}
				if err := b.charge(src, e.Hash, relTo(o.sub, p)); err != nil {
					return err
				}
				need(e.Hash)
			}
		}
		return nil
	}
	type item struct {
		h    plumbing.Hash
		dist int
	}
	var copied []*object.Commit
	for _, want := range wants {
		h, ok := peelLocal(src, want)
		if ok {
			for t := want; t != h; {
				need(t)
				tag, err := object.GetTag(src, t)
				if err != nil {
					return fmt.Errorf("tag %s: %w", t, err)
				}
				t = tag.Target
			}
		}
		queue := []item{{h, 0}}
		for len(queue) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			it := queue[0]
			queue = queue[1:]
			if seen[it.h] {
				continue
			}
			if size, err := objectSize(src, it.h); err != nil {
				return fmt.Errorf("commit %s: %w", it.h, err)
			} else if size > o.lim.MaxFileBytes {
				return &LimitError{Bound: BoundFileBytes, What: "commit " + it.h.String(), Size: size, Limit: o.lim.MaxFileBytes, Commit: it.h.String()}
			}
			c, err := object.GetCommit(src, it.h)
			if err != nil {
				return fmt.Errorf("commit %s: %w", it.h, err)
			}
			if it.dist == 0 && o.check != nil {
				sc, err := readCommit(src, it.h)
				if err != nil {
					return err
				}
				if err := o.check(sc); err != nil {
					return &commitRefused{err}
				}
			}
			need(it.h)
			copied = append(copied, c)
			b = &treeBudget{lim: o.lim, sub: o.sub}
			if err := walkTree(c.TreeHash, "."); err != nil {
				var le *LimitError
				if errors.As(err, &le) && le.Commit == "" {
					le.Commit = it.h.String()
				}
				return err
			}
			if it.dist+1 < depth {
				for _, p := range c.ParentHashes {
					queue = append(queue, item{p, it.dist + 1})
				}
			}
		}
	}
	if len(todo) > 0 {
		w, err := dst.PackfileWriter()
		if err != nil {
			return fmt.Errorf("store pack: %w", err)
		}
		if _, err := packfile.NewEncoder(w, src, false).Encode(todo, 10); err != nil {
			w.Close()
			return fmt.Errorf("copy objects: %w", err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("store pack: %w", err)
		}
	}
	var cut []plumbing.Hash
	for _, c := range copied {
		for _, p := range c.ParentHashes {
			if dst.HasEncodedObject(p) != nil {
				cut = append(cut, c.Hash)
				break
			}
		}
	}
	if err := updateShallow(dst, cut, nil); err != nil {
		return fmt.Errorf("record shallow commits: %w", err)
	}
	return normalizeShallow(dst)
}

package source

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"reconciler.dev/reconciler/internal/gitserver"
)

func mustHistory(t *testing.T, s Source, req HistoryRequest) History {
	t.Helper()
	h, err := s.(Historian).History(ctxT(t), req)
	if err != nil {
		t.Fatalf("History(%s..%s): %v", short(req.Base), short(req.Head), err)
	}
	return h
}

func short(id string) string {
	if len(id) > 7 {
		return id[:7]
	}
	return id
}

func ids(cs []Commit) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func hs(hh ...plumbing.Hash) []string {
	var out []string
	for _, h := range hh {
		out = append(out, h.String())
	}
	return out
}

// httpURL serves the work repository over smart http (the real git
// http-backend), counting requests.
func (r *workRepo) httpURL(t *testing.T) (string, *gitserver.Server) {
	t.Helper()
	root := t.TempDir()
	if err := os.Symlink(filepath.Join(r.dir, ".git"), filepath.Join(root, "w.git")); err != nil {
		t.Fatal(err)
	}
	gs := gitserver.New(root)
	srv := httptest.NewServer(gs)
	t.Cleanup(srv.Close)
	return srv.URL + "/w.git", gs
}

func TestHistoryFromTheCacheAndDeeper(t *testing.T) {
	for _, transport := range []string{"file", "http"} {
		t.Run(transport, func(t *testing.T) {
			r := newWorkRepo(t)
			url := r.url()
			var gs *gitserver.Server
			if transport == "http" {
				url, gs = r.httpURL(t)
			}
			requests := func() int64 {
				if gs == nil {
					return 0
				}
				return gs.Stats("w.git").Requests
			}
			c1 := r.commit("one", map[string]string{"a.yaml": "1\n"})
			s := mustOpen(t, Options{URL: url, CacheDir: t.TempDir()})
			mustFetch(t, s)
			c2 := r.commit("two", map[string]string{"a.yaml": "2\n"})
			mustFetch(t, s)

			// The agent saw the parent: the cache answers, no request.
			before := requests()
			h := mustHistory(t, s, HistoryRequest{Head: c2.String(), Base: c1.String(), All: true})
			if !h.Descends || !h.Known || !h.Complete || h.Fetches != 0 || !slices.Equal(ids(h.Commits), hs(c2)) {
				t.Errorf("child of the cached base: %+v", summary(h))
			}
			if d := requests() - before; d != 0 {
				t.Errorf("answered from the cache but made %d requests", d)
			}

			// Three commits pushed between two polls: deepened.
			c3 := r.commit("three", map[string]string{"a.yaml": "3\n"})
			c4 := r.commit("four", map[string]string{"b.yaml": "4\n"})
			c5 := r.commit("five", map[string]string{"a.yaml": "5\n"})
			mustFetch(t, s)
			before = requests()
			h = mustHistory(t, s, HistoryRequest{Head: c5.String(), Base: c2.String(), All: true})
			if !h.Descends || !h.Known || !h.Complete || !slices.Equal(ids(h.Commits), hs(c5, c4, c3)) {
				t.Errorf("three new commits: %+v", summary(h))
			}
			if h.Fetches != 2 || h.Depth != 4 {
				t.Errorf("three new commits: %d fetches to depth %d, want 2 to depth 4", h.Fetches, h.Depth)
			}
			if gs != nil {
				if d := requests() - before; d != 2*int64(h.Fetches) {
					t.Errorf("%d deepening fetches cost %d requests, want a lookup and a fetch each", h.Fetches, d)
				}
			}
			// Now cached: asked again, no request.
			before = requests()
			h = mustHistory(t, s, HistoryRequest{Head: c5.String(), Base: c2.String()})
			if !h.Descends || h.Fetches != 0 || requests() != before {
				t.Errorf("asked again: %+v, %d requests", summary(h), requests()-before)
			}

			// History rewritten below the base: known not to descend from
			// the cache alone.
			wt, _ := r.repo.Worktree()
			if err := wt.Checkout(&git.CheckoutOptions{Hash: c3, Force: true}); err != nil {
				t.Fatal(err)
			}
			r4 := r.commitWithParents("rewritten four", map[string]string{"a.yaml": "r4\n"}, c3)
			mustFetch(t, s)
			before = requests()
			h = mustHistory(t, s, HistoryRequest{Head: r4.String(), Base: c5.String(), All: true})
			if h.Descends || !h.Known || h.Commits != nil || h.Fetches != 0 || requests() != before {
				t.Errorf("rewritten: %+v, %d requests", summary(h), requests()-before)
			}

			// Back to an old commit the agent applied before: an ancestor.
			r.setRef("refs/heads/main", c2)
			mustFetch(t, s)
			h = mustHistory(t, s, HistoryRequest{Head: c2.String(), Base: c5.String()})
			if h.Descends || !h.Known || !h.HeadBeforeBase {
				t.Errorf("rolled back to an ancestor: %+v", summary(h))
			}

			// The base is not in this history at all, which is longer than
			// MaxDepth: not known.
			h = mustHistory(t, s, HistoryRequest{Head: c2.String(), Base: plumbing.NewHash("1111111111111111111111111111111111111111").String(), MaxDepth: 8})
			if h.Descends || !h.Known {
				t.Errorf("unrelated base, history ends within the bound: %+v", summary(h))
			}
		})
	}
}

func TestHistoryBoundAndMerges(t *testing.T) {
	r := newWorkRepo(t)
	var line []plumbing.Hash
	for i := 0; i < 12; i++ {
		line = append(line, r.commit("c", map[string]string{"a.yaml": string(rune('a'+i)) + "\n"}))
	}
	s := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir()})
	mustFetch(t, s)
	head := line[len(line)-1]

	// The base lies deeper than MaxDepth: not known, after fetches of
	// depth 2 and 4.
	h := mustHistory(t, s, HistoryRequest{Head: head.String(), Base: line[0].String(), All: true, MaxDepth: 4})
	if h.Descends || h.Known || h.Complete || h.Fetches != 2 || h.Depth != 4 {
		t.Errorf("beyond the bound: %+v", summary(h))
	}
	// Within a larger bound: found.
	h = mustHistory(t, s, HistoryRequest{Head: head.String(), Base: line[0].String(), All: true, MaxDepth: 64})
	if !h.Descends || !h.Known || !h.Complete || len(h.Commits) != 11 {
		t.Errorf("within the bound: %+v", summary(h))
	}

	// A side line forked below the base and merged above it: the commits
	// between are the merge and the side commit, not the fork's history.
	r2 := newWorkRepo(t)
	a := r2.commit("a", map[string]string{"a.yaml": "a\n"})
	b := r2.commit("b", map[string]string{"a.yaml": "b\n"})
	s2 := mustOpen(t, Options{URL: r2.url(), CacheDir: t.TempDir()})
	mustFetch(t, s2)
	side := r2.commitWithParents("side", map[string]string{"s.yaml": "s\n"}, a)
	m := r2.commitWithParents("merge", map[string]string{"a.yaml": "m\n"}, b, side)
	mustFetch(t, s2)
	h = mustHistory(t, s2, HistoryRequest{Head: m.String(), Base: b.String(), All: true})
	if !h.Descends || !h.Complete || !slices.Equal(ids(h.Commits), hs(m, side)) {
		t.Errorf("merge of a side line: %+v", summary(h))
	}
	// Without All, finding the base is enough: no fetch.
	s3 := mustOpen(t, Options{URL: r2.url(), CacheDir: t.TempDir()})
	r2.setRef("refs/heads/main", b)
	mustFetch(t, s3)
	r2.setRef("refs/heads/main", m)
	mustFetch(t, s3)
	h = mustHistory(t, s3, HistoryRequest{Head: m.String(), Base: b.String()})
	if !h.Descends || !h.Known || h.Fetches != 0 {
		t.Errorf("descent only: %+v", summary(h))
	}
}

func TestHistoryWithoutBaseAndErrors(t *testing.T) {
	r := newWorkRepo(t)
	c1 := r.commit("one", map[string]string{"a.yaml": "1\n"})
	s := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir()})
	mustFetch(t, s)
	h := mustHistory(t, s, HistoryRequest{Head: c1.String()})
	if h.Head.ID != c1.String() || !slices.Equal(ids(h.Commits), hs(c1)) || len(h.Head.Raw) == 0 {
		t.Errorf("no base: %+v", summary(h))
	}
	if _, err := s.(Historian).History(ctxT(t), HistoryRequest{Head: "abc"}); err == nil {
		t.Error("a short hash was accepted")
	}
	if _, err := s.(Historian).History(ctxT(t), HistoryRequest{Head: "2222222222222222222222222222222222222222"}); err == nil {
		t.Error("a commit the cache lacks was accepted")
	}

	// The ref moved between Fetch and History: the history of the old
	// head is not fetched by the new ref.
	c2 := r.commit("two", map[string]string{"a.yaml": "2\n"})
	s = mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir()})
	mustFetch(t, s)
	r.commit("three", map[string]string{"a.yaml": "3\n"})
	_, err := s.(Historian).History(ctxT(t), HistoryRequest{Head: c2.String(), Base: "3333333333333333333333333333333333333333"})
	if err == nil || !errors.Is(err, ErrRefMoved) {
		t.Errorf("ref moved: err = %v, want ErrRefMoved", err)
	}
}

type historySummary struct {
	Descends, Known, Complete, HeadBeforeBase bool
	Commits                                   []string
	Depth, Fetches                            int
}

func summary(h History) historySummary {
	var c []string
	for _, id := range ids(h.Commits) {
		c = append(c, short(id))
	}
	return historySummary{h.Descends, h.Known, h.Complete, h.HeadBeforeBase, c, h.Depth, h.Fetches}
}

package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// cacheDir is the folder of one URL and ref below Options.CacheDir:
//
//	repo/        a bare git repository (go-git filesystem storage) holding
//	             every commit fetched so far, each with its whole tree, and
//	             the standard "shallow" file marking where history was cut
//	state.json   the last commit handed out, written only after its tree
//	             was verified, replaced atomically
//
// Old commits are kept, not pruned: together with the shallow marks that is
// what the ancestry check (anti-rollback, history.go) needs, deepening from
// the new commit until it meets the old one.
type cacheDir struct {
	dir string
}

// state is what survives a restart. Author, message and time are not
// stored: they are read back from the verified commit object.
type state struct {
	URL    string    `json:"url"`    // redacted; a sanity check only
	Ref    string    `json:"ref"`    // the resolved ref name
	Commit string    `json:"commit"` // full hash
	Object string    `json:"object"` // what was asked for (an annotated tag's object)
	Time   time.Time `json:"fetched"`
}

func (c cacheDir) repoPath() string  { return filepath.Join(c.dir, "repo") }
func (c cacheDir) statePath() string { return filepath.Join(c.dir, "state.json") }

// readState returns the last fetched commit; any damage is an error, and
// the caller then treats the cache as empty.
func (c cacheDir) readState() (state, error) {
	b, err := os.ReadFile(c.statePath())
	if err != nil {
		return state{}, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return state{}, fmt.Errorf("%s: %w", c.statePath(), err)
	}
	if !IsCommitID(st.Commit) || (st.Object != "" && !IsCommitID(st.Object)) || st.Ref == "" {
		return state{}, fmt.Errorf("%s: not a fetched revision", c.statePath())
	}
	return st, nil
}

func (c cacheDir) writeState(st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, ".state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.statePath())
}

// open returns the object store, creating an empty repository if there is
// none. Every call opens afresh: a long-lived handle with a warm object
// cache would hide damage done to the files since.
func (c cacheDir) open() (*filesystem.Storage, error) {
	p := c.repoPath()
	if _, err := os.Stat(filepath.Join(p, "objects")); errors.Is(err, os.ErrNotExist) {
		if _, err := git.PlainInit(p, true); err != nil && !errors.Is(err, git.ErrRepositoryAlreadyExists) {
			return nil, fmt.Errorf("create cache repository: %w", err)
		}
	}
	// Packs that a killed fetch left half written.
	if tmps, _ := filepath.Glob(filepath.Join(p, "objects", "pack", "tmp_*")); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	return filesystem.NewStorage(osfs.New(p), cache.NewObjectLRU(2*cache.MiByte)), nil
}

// reset throws the cache away; the next fetch starts from nothing.
func (c cacheDir) reset() error {
	if err := os.Remove(c.statePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// Renamed first so that a crash halfway through never leaves a
	// half-deleted repository that looks usable.
	p := c.repoPath()
	old := p + ".old"
	os.RemoveAll(old)
	if err := os.Rename(p, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	// Anything else a damaged cache may hold.
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".state-") {
			os.Remove(filepath.Join(c.dir, e.Name()))
		}
	}
	return nil
}

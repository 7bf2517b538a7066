package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// dirSource is a plain local folder, for trying out desired state before
// committing it. There is no history, so the revision is a hash of the
// content, and the artifact is a snapshot held in memory: files edited after
// a Fetch do not change an artifact already handed out.
type dirSource struct {
	root string // absolute
	sub  string // Options.Path, "." for the root

	mu   sync.Mutex
	last *Artifact
}

func (s *dirSource) String() string { return s.root }

func (s *dirSource) Fetch(ctx context.Context) (Artifact, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.snapshot(ctx)
	if err != nil {
		return Artifact{}, false, err
	}
	// "changed" compares with the previous call in this process only:
	// there is nothing to keep across restarts.
	changed := s.last == nil || s.last.Revision.ID != a.Revision.ID
	s.last = &a
	return a, changed, nil
}

// Last returns the previous snapshot, or takes one: a folder is always
// at hand, no network is involved.
func (s *dirSource) Last(ctx context.Context) (Artifact, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil {
		return *s.last, nil
	}
	return s.snapshot(ctx)
}

// snapshot reads every file below the folder. The hash covers each file's
// slash-separated path, size and content in path order, so renaming a file
// or moving bytes between files changes it. .git folders are skipped: a work
// tree's own bookkeeping is not desired state. Symbolic links to files are
// read through, as os.DirFS would; links to folders are left out, as
// filepath.WalkDir does.
func (s *dirSource) snapshot(ctx context.Context) (Artifact, error) {
	dir := filepath.Join(s.root, filepath.FromSlash(s.sub))
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Artifact{}, fmt.Errorf("source folder %s: path %q: %w", s.root, s.sub, fs.ErrNotExist)
		}
		return Artifact{}, fmt.Errorf("source folder %s: %w", s.root, err)
	}
	if !st.IsDir() {
		return Artifact{}, fmt.Errorf("source folder %s: path %q is not a folder", s.root, s.sub)
	}
	root := &node{name: ".", mode: fs.ModeDir | 0o555, modTime: st.ModTime()}
	dirs := map[string]*node{".": root}
	h := sha256.New()
	var newest time.Time
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() && d.Name() == ".git" {
			return fs.SkipDir
		}
		parent := dirs[pathDir(rel)]
		if parent == nil {
			return nil // below a skipped folder
		}
		info, err := os.Stat(p) // follows links
		if err != nil {
			if d.Type()&fs.ModeSymlink != 0 {
				return nil // a dangling link is not content
			}
			return err
		}
		if info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		n := &node{name: d.Name(), modTime: info.ModTime()}
		switch {
		case d.IsDir():
			n.mode = fs.ModeDir | 0o555
			dirs[rel] = n
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.mode, n.data, n.size = 0o444, b, int64(len(b))
			if info.Mode()&0o111 != 0 {
				n.mode = 0o555
			}
			h.Write([]byte(rel))
			h.Write([]byte{0})
			h.Write([]byte(strconv.Itoa(len(b))))
			h.Write([]byte{0})
			h.Write(b)
		default:
			return nil // links to folders, sockets, devices
		}
		parent.entries = append(parent.entries, n)
		return nil
	})
	if err != nil {
		return Artifact{}, fmt.Errorf("source folder %s: %w", s.root, err)
	}
	// WalkDir visits in lexical order, so entries are sorted already; the
	// sort keeps that true whatever the walk order.
	for _, d := range dirs {
		sortEntries(d.entries)
	}
	return Artifact{
		Revision: Revision{
			ID:   "local:" + hex.EncodeToString(h.Sum(nil))[:12],
			Time: newest,
		},
		FS: &treeFS{root: root},
	}, nil
}

func pathDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return "."
}

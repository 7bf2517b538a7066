package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
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
	lim  Limits

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

// snapshot reads every *.yaml and *.yml file below the folder (what the
// loader reads; nothing else is taken in), confined to the folder the way a
// git tree is: through an os.Root, so no symbolic link leads out of it (one
// that tries refuses the revision, and nothing of its target is read); only
// regular files are opened, without blocking (a FIFO named p.yaml is refused
// at once); every size is checked against the bounds before a byte is read.
// The hash covers each file's slash-separated path, size and content in
// path order, so renaming a file or moving bytes between files changes it.
// .git folders are skipped: a work tree's own bookkeeping is not desired
// state. Links to folders are left out, as fs.WalkDir does.
func (s *dirSource) snapshot(ctx context.Context) (Artifact, error) {
	r, err := os.OpenRoot(s.root)
	if err != nil {
		return Artifact{}, fmt.Errorf("source folder %s: %w", s.root, err)
	}
	defer r.Close()
	st, err := r.Stat(s.sub)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Artifact{}, fmt.Errorf("source folder %s: path %q: %w", s.root, s.sub, fs.ErrNotExist)
		}
		return Artifact{}, fmt.Errorf("source folder %s: path %q: %w", s.root, s.sub, err)
	}
	if !st.IsDir() {
		return Artifact{}, fmt.Errorf("source folder %s: path %q is not a folder", s.root, s.sub)
	}
	root := &node{name: ".", mode: fs.ModeDir | 0o555, modTime: st.ModTime()}
	dirs := map[string]*node{".": root}
	h := sha256.New()
	var newest time.Time
	var total int64
	err = fs.WalkDir(r.FS(), s.sub, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := relTo(s.sub, p)
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
		if d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n := &node{name: d.Name(), mode: fs.ModeDir | 0o555, modTime: info.ModTime()}
			dirs[rel] = n
			parent.entries = append(parent.entries, n)
			return nil
		}
		if ext := path.Ext(d.Name()); ext != ".yaml" && ext != ".yml" {
			return nil // not desired state: never opened
		}
		b, info, err := readConfined(r, p, s.lim.MaxFileBytes)
		if errors.Is(err, errDangling) {
			return nil // a dangling link is not content
		}
		if err != nil {
			return err
		}
		if total += int64(len(b)); total > s.lim.MaxRevisionBytes {
			return &LimitError{Bound: BoundRevisionBytes, What: fmt.Sprintf("the files under %q (up to %s)", s.sub, p), Size: total, Limit: s.lim.MaxRevisionBytes, AtLeast: true}
		}
		if info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		n := &node{name: d.Name(), modTime: info.ModTime(), mode: 0o444, data: b, size: int64(len(b))}
		if info.Mode()&0o111 != 0 {
			n.mode = 0o555
		}
		h.Write([]byte(rel))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(len(b))))
		h.Write([]byte{0})
		h.Write(b)
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

// ErrConfined: a folder's file was refused for what it is, not for what it
// says: a link leading out of the folder, or not a regular file.
var ErrConfined = errors.New("refused by the folder's confinement")

// FolderError names the file refused and why. It never quotes the file.
type FolderError struct {
	File string
	Why  string
}

func (e *FolderError) Error() string        { return e.File + ": " + e.Why }
func (e *FolderError) Is(target error) bool { return target == ErrConfined }

// errDangling: a link to nothing, which a walk leaves out.
var errDangling = errors.New("dangling symbolic link")

// readConfined reads the regular file name inside r: links are followed
// only within r, the file is opened without blocking (a FIFO or device
// never holds the reader up) and fstat'ed, and its size is checked against
// limit before a byte is read; reading stops one byte past limit in case it
// grows meanwhile.
func readConfined(r *os.Root, name string, limit int64) ([]byte, fs.FileInfo, error) {
	li, err := r.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	info, err := r.Stat(name)
	if err != nil {
		if li.Mode()&fs.ModeSymlink == 0 {
			return nil, nil, err
		}
		if _, oerr := os.Stat(filepath.Join(r.Name(), filepath.FromSlash(name))); oerr == nil {
			return nil, nil, &FolderError{File: name, Why: "symbolic link leads out of the folder; only files inside it are read"}
		}
		return nil, nil, errDangling
	}
	if err := regularFile(name, info, limit); err != nil {
		return nil, nil, err
	}
	f, err := openNonBlocking(r, name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	// The file may have been swapped since the Stat: judge what was opened.
	if info, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if err := regularFile(name, info, limit); err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, nil, &LimitError{Bound: BoundFileBytes, What: "file " + name, Size: int64(len(b)), Limit: limit, AtLeast: true}
	}
	return b, info, nil
}

func regularFile(name string, info fs.FileInfo, limit int64) error {
	m := info.Mode()
	if !m.IsRegular() {
		what := "not a regular file"
		switch {
		case m&fs.ModeNamedPipe != 0:
			what = "a named pipe (FIFO), not a regular file"
		case m&fs.ModeSocket != 0:
			what = "a socket, not a regular file"
		case m&fs.ModeDevice != 0:
			what = "a device, not a regular file"
		case m.IsDir():
			what = "a folder, not a file"
		}
		return &FolderError{File: name, Why: what + "; only regular files are read"}
	}
	if info.Size() > limit {
		return &LimitError{Bound: BoundFileBytes, What: "file " + name, Size: info.Size(), Limit: limit}
	}
	return nil
}

// ReadFile reads one file as a folder source reads its files: confined to
// the folder it is in (a link out of it is refused), a regular file only,
// never blocking, and at most lim.MaxFileBytes (zero: the default). For
// `validate FILE`.
func ReadFile(name string, lim Limits) ([]byte, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(filepath.Dir(name))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, _, err := readConfined(r, filepath.Base(name), lim.MaxFileBytes)
	if errors.Is(err, errDangling) {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	var fe *FolderError
	if errors.As(err, &fe) {
		fe.File = name
	}
	var le *LimitError
	if errors.As(err, &le) {
		le.What = "file " + name
	}
	return b, err
}

func pathDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return "."
}

package source

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// node is one entry of a fetched tree. The shape of the whole tree is built
// (and verified) when the revision is taken; file contents stay in the
// cached object store until they are read.
type node struct {
	name    string
	mode    fs.FileMode
	size    int64
	modTime time.Time
	hash    plumbing.Hash // git: the blob
	data    []byte        // plain folder: the content, read with the revision
	target  string        // symlink: where it points, relative to its folder
	entries []*node       // folder: sorted by name
}

func (n *node) isDir() bool { return n.mode.IsDir() }

func (n *node) child(name string) *node {
	i := sort.Search(len(n.entries), func(i int) bool { return n.entries[i].name >= name })
	if i < len(n.entries) && n.entries[i].name == name {
		return n.entries[i]
	}
	return nil
}

func sortEntries(es []*node) {
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
}

// treeFS is a read-only fs.FS over a node tree. Symbolic links are followed
// by Open, Stat and ReadFile (as os.DirFS does) but only inside the tree:
// one that points above the root, or absolute, fails to open. ReadDir
// reports them as links, so fs.WalkDir does not descend into them.
type treeFS struct {
	root *node
	// blob reads a file's content; nil when the nodes carry it.
	blob func(plumbing.Hash) ([]byte, error)
}

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
)

const maxLinkHops = 40

func (f *treeFS) find(op, name string, followLast bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return f.walk(op, name, name, followLast, 0)
}

func (f *treeFS) walk(op, orig, p string, followLast bool, hops int) (*node, error) {
	n := f.root
	if p == "." {
		return n, nil
	}
	cur := "."
	parts := strings.Split(p, "/")
	for i, part := range parts {
		if !n.isDir() {
			return nil, &fs.PathError{Op: op, Path: orig, Err: fs.ErrNotExist}
		}
		c := n.child(part)
		if c == nil {
			return nil, &fs.PathError{Op: op, Path: orig, Err: fs.ErrNotExist}
		}
		cp := path.Join(cur, part)
		if c.mode&fs.ModeSymlink != 0 && (i < len(parts)-1 || followLast) {
			if hops >= maxLinkHops {
				return nil, &fs.PathError{Op: op, Path: orig, Err: errors.New("too many levels of symbolic links")}
			}
			tp := path.Join(path.Dir(cp), c.target)
			if c.target == "" || path.IsAbs(c.target) || tp == ".." || strings.HasPrefix(tp, "../") {
				return nil, &fs.PathError{Op: op, Path: orig, Err: errors.New("symbolic link points outside the tree")}
			}
			r, err := f.walk(op, orig, tp, true, hops+1)
			if err != nil {
				return nil, err
			}
			c, cp = r, tp
		}
		n, cur = c, cp
	}
	return n, nil
}

func (f *treeFS) content(op, name string, n *node) ([]byte, error) {
	if f.blob == nil {
		return n.data, nil
	}
	b, err := f.blob(n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return b, nil
}

func (f *treeFS) Open(name string) (fs.File, error) {
	n, err := f.find("open", name, true)
	if err != nil {
		return nil, err
	}
	info := fileInfo{n: n, name: path.Base(name)}
	if n.isDir() {
		return &dirHandle{info: info, n: n}, nil
	}
	b, err := f.content("open", name, n)
	if err != nil {
		return nil, err
	}
	return &fileHandle{info: info, r: bytes.NewReader(b)}, nil
}

func (f *treeFS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.find("stat", name, true)
	if err != nil {
		return nil, err
	}
	return fileInfo{n: n, name: path.Base(name)}, nil
}

func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.find("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	out := make([]fs.DirEntry, len(n.entries))
	for i, c := range n.entries {
		out[i] = dirEntry{c}
	}
	return out, nil
}

func (f *treeFS) ReadFile(name string) ([]byte, error) {
	n, err := f.find("read", name, true)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	b, err := f.content("read", name, n)
	if err != nil {
		return nil, err
	}
	// The caller may modify what it gets; our copy stays as fetched.
	return bytes.Clone(b), nil
}

type fileInfo struct {
	n    *node
	name string
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.n.size }
func (i fileInfo) Mode() fs.FileMode  { return i.n.mode }
func (i fileInfo) ModTime() time.Time { return i.n.modTime }
func (i fileInfo) IsDir() bool        { return i.n.isDir() }
func (i fileInfo) Sys() any           { return nil }

type dirEntry struct{ n *node }

func (e dirEntry) Name() string               { return e.n.name }
func (e dirEntry) IsDir() bool                { return e.n.isDir() }
func (e dirEntry) Type() fs.FileMode          { return e.n.mode.Type() }
func (e dirEntry) Info() (fs.FileInfo, error) { return fileInfo{n: e.n, name: e.n.name}, nil }
func (e dirEntry) String() string             { return fs.FormatDirEntry(e) }

type fileHandle struct {
	info   fileInfo
	r      *bytes.Reader
	closed bool
}

func (h *fileHandle) Stat() (fs.FileInfo, error) { return h.info, nil }

func (h *fileHandle) Read(p []byte) (int, error) {
	if h.closed {
		return 0, &fs.PathError{Op: "read", Path: h.info.name, Err: fs.ErrClosed}
	}
	return h.r.Read(p)
}

func (h *fileHandle) ReadAt(p []byte, off int64) (int, error) {
	if h.closed {
		return 0, &fs.PathError{Op: "read", Path: h.info.name, Err: fs.ErrClosed}
	}
	return h.r.ReadAt(p, off)
}

func (h *fileHandle) Seek(off int64, whence int) (int64, error) {
	if h.closed {
		return 0, &fs.PathError{Op: "seek", Path: h.info.name, Err: fs.ErrClosed}
	}
	return h.r.Seek(off, whence)
}

func (h *fileHandle) Close() error {
	if h.closed {
		return &fs.PathError{Op: "close", Path: h.info.name, Err: fs.ErrClosed}
	}
	h.closed = true
	return nil
}

type dirHandle struct {
	info   fileInfo
	n      *node
	off    int
	closed bool
}

func (d *dirHandle) Stat() (fs.FileInfo, error) { return d.info, nil }

func (d *dirHandle) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

func (d *dirHandle) Close() error {
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.info.name, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}

func (d *dirHandle) ReadDir(count int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.info.name, Err: fs.ErrClosed}
	}
	rest := d.n.entries[d.off:]
	if count > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if count > 0 && count < len(rest) {
		rest = rest[:count]
	}
	out := make([]fs.DirEntry, len(rest))
	for i, c := range rest {
		out[i] = dirEntry{c}
	}
	d.off += len(rest)
	return out, nil
}

package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// readVerified reads one object and checks that its content hashes to its
// name. go-git does not do that on read, and a damaged cache must be
// noticed, not handed out.
func readVerified(sto storer.EncodedObjectStorer, h plumbing.Hash) (*plumbing.MemoryObject, error) {
	return readVerifiedMax(sto, h, DefaultLimits().MaxFileBytes)
}

// objectSize is an object's size from its header (for a delta, from the
// delta's header), without inflating its content.
func objectSize(sto storer.EncodedObjectStorer, h plumbing.Hash) (int64, error) {
	if ss, ok := sto.(interface {
		EncodedObjectSize(plumbing.Hash) (int64, error)
	}); ok {
		return ss.EncodedObjectSize(h)
	}
	obj, err := sto.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return 0, err
	}
	return obj.Size(), nil
}

// readVerifiedMax is readVerified refusing, before reading it, an object
// larger than limit bytes.
func readVerifiedMax(sto storer.EncodedObjectStorer, h plumbing.Hash, limit int64) (*plumbing.MemoryObject, error) {
	size, err := objectSize(sto, h)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", h, err)
	}
	if size > limit {
		return nil, &LimitError{Bound: BoundFileBytes, What: "object " + h.String(), Size: size, Limit: limit}
	}
	obj, err := sto.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", h, err)
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", h, err)
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", h, err)
	}
	if int64(len(data)) != obj.Size() || plumbing.ComputeHash(obj.Type(), data) != h {
		return nil, fmt.Errorf("object %s is damaged: its content does not match its hash", h)
	}
	mo := &plumbing.MemoryObject{}
	mo.SetType(obj.Type())
	mo.SetSize(int64(len(data)))
	if _, err := mo.Write(data); err != nil {
		return nil, err
	}
	return mo, nil
}

// peelStored follows h through annotated tags to the commit, in the cache.
func peelStored(sto storer.EncodedObjectStorer, h plumbing.Hash) (c plumbing.Hash, err error) {
	err = safely(func() error {
		for i := 0; i < 10; i++ {
			o, err := readVerified(sto, h)
			if err != nil {
				return err
			}
			switch o.Type() {
			case plumbing.CommitObject:
				c = h
				return nil
			case plumbing.TagObject:
				t, err := object.DecodeTag(sto, o)
				if err != nil {
					return fmt.Errorf("tag %s: %w", h, err)
				}
				h = t.Target
			default:
				return fmt.Errorf("%s is a %s, not a commit", h, o.Type())
			}
		}
		return fmt.Errorf("tag %s: too many tags in a chain", h)
	})
	return c, err
}

// buildOpts is what buildGitArtifact needs besides the commit.
type buildOpts struct {
	lim Limits
	// check judges the commit object before anything of its tree is read.
	check func(Commit) error
	// verified remembers trees already verified; nil: none.
	verified *verifiedTrees
}

// verifiedTrees remembers the node trees built (and every blob in them
// verified) by tree hash, so a poll where nothing moved, which rebuilds the
// artifact of the same commit, does no blob work at all. Content is still
// verified against its hash whenever it is read (blobReader).
type verifiedTrees struct {
	mu sync.Mutex
	m  map[plumbing.Hash]*node
}

// maxVerifiedTrees: a few revisions back and forth (a revert) are enough.
const maxVerifiedTrees = 8

func (v *verifiedTrees) get(h plumbing.Hash) *node {
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.m[h]
}

func (v *verifiedTrees) put(h plumbing.Hash, n *node) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerifiedTrees {
		v.m = map[plumbing.Hash]*node{}
	}
	v.m[h] = n
}

// treeBudget counts what a revision's files cost while its tree is built.
type treeBudget struct {
	lim   Limits
	total int64
	sub   string
}

// buildGitArtifact checks commit (signature first, through o.check), then
// verifies every tree and blob under sub, each size checked against the
// bounds from its object header before it is read, and returns them as an
// Artifact whose FS reads blobs from sto on demand.
func buildGitArtifact(sto storer.EncodedObjectStorer, commit plumbing.Hash, ref, sub string, o buildOpts) (Artifact, error) {
	co, err := readVerifiedMax(sto, commit, o.lim.MaxFileBytes)
	if err != nil {
		return Artifact{}, err
	}
	if co.Type() != plumbing.CommitObject {
		return Artifact{}, fmt.Errorf("%s is a %s, not a commit", commit, co.Type())
	}
	c, err := object.DecodeCommit(sto, co)
	if err != nil {
		return Artifact{}, fmt.Errorf("commit %s: %w", commit, err)
	}
	if o.check != nil {
		if err := checkCommit(o.check, commit, co, c); err != nil {
			return Artifact{}, &commitRefused{err}
		}
	}
	when := c.Committer.When
	th := c.TreeHash
	if sub != "." {
		for _, part := range strings.Split(sub, "/") {
			t, err := readTree(sto, th, o.lim.MaxFileBytes)
			if err != nil {
				return Artifact{}, err
			}
			e := findEntry(t, part)
			switch {
			case e == nil:
				return Artifact{}, &pathError{path: sub, commit: commit.String(), why: "does not exist"}
			case e.Mode != filemode.Dir:
				return Artifact{}, &pathError{path: sub, commit: commit.String(), why: "is not a folder"}
			}
			th = e.Hash
		}
	}
	root := &node{name: ".", mode: fs.ModeDir | 0o555, modTime: when}
	if cached := o.verified.get(th); cached != nil {
		cp := *cached
		cp.modTime = when
		root = &cp
	} else {
		b := &treeBudget{lim: o.lim, sub: sub}
		if err := fillTree(sto, root, th, ".", b); err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				le.Commit = commit.String()
			}
			return Artifact{}, err
		}
		o.verified.put(th, root)
	}
	msg, _, _ := strings.Cut(c.Message, "\n")
	br := &blobReader{sto: sto, limit: o.lim.MaxFileBytes}
	return Artifact{
		Revision: Revision{
			ID:      commit.String(),
			Ref:     ref,
			Author:  fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
			Message: strings.TrimSpace(msg),
			Time:    when,
		},
		FS: &treeFS{root: root, blob: br.read},
	}, nil
}

// checkCommit hands the commit object, as read, to check.
func checkCommit(check func(Commit) error, h plumbing.Hash, co *plumbing.MemoryObject, c *object.Commit) error {
	raw, err := readAllObject(co)
	if err != nil {
		return err
	}
	sc := Commit{ID: h.String(), Raw: raw}
	for _, p := range c.ParentHashes {
		sc.Parents = append(sc.Parents, p.String())
	}
	return check(sc)
}

func readTree(sto storer.EncodedObjectStorer, h plumbing.Hash, limit int64) (*object.Tree, error) {
	o, err := readVerifiedMax(sto, h, limit)
	if err != nil {
		return nil, err
	}
	if o.Type() != plumbing.TreeObject {
		return nil, fmt.Errorf("%s is a %s, not a tree", h, o.Type())
	}
	t, err := object.DecodeTree(sto, o)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", h, err)
	}
	return t, nil
}

func findEntry(t *object.Tree, name string) *object.TreeEntry {
	for i := range t.Entries {
		if t.Entries[i].Name == name {
			return &t.Entries[i]
		}
	}
	return nil
}

// fillTree adds the entries of tree th (at path dir below the root) below
// n, reading every blob once to verify it, each only after its size passed
// the bounds. Submodules are left out: their commits live elsewhere.
func fillTree(sto storer.EncodedObjectStorer, n *node, th plumbing.Hash, dir string, b *treeBudget) error {
	if err := b.charge(sto, th, dir); err != nil {
		return err
	}
	t, err := readTree(sto, th, b.lim.MaxFileBytes)
	if err != nil {
		return err
	}
	for _, e := range t.Entries {
		if !fs.ValidPath(e.Name) || strings.Contains(e.Name, "/") || e.Name == "." || e.Name == ".." {
			return fmt.Errorf("tree %s has an invalid entry name %q", th, e.Name)
		}
		p := path.Join(dir, e.Name)
		c := &node{name: e.Name, modTime: n.modTime, hash: e.Hash}
		switch e.Mode {
		case filemode.Dir:
			c.mode = fs.ModeDir | 0o555
			if err := fillTree(sto, c, e.Hash, p, b); err != nil {
				return err
			}
		case filemode.Submodule:
			continue
		case filemode.Regular, filemode.Deprecated, filemode.Executable, filemode.Symlink:
			if err := b.charge(sto, e.Hash, p); err != nil {
				return err
			}
			blobReads.Add(1)
			o, err := readVerifiedMax(sto, e.Hash, b.lim.MaxFileBytes)
			if err != nil {
				return err
			}
			if o.Type() != plumbing.BlobObject {
				return fmt.Errorf("%s is a %s, not a blob", e.Hash, o.Type())
			}
			c.size = o.Size()
			c.mode = 0o444
			if e.Mode == filemode.Executable {
				c.mode = 0o555
			}
			if e.Mode == filemode.Symlink {
				c.mode = fs.ModeSymlink | 0o777
				r, _ := o.Reader()
				target, _ := io.ReadAll(r)
				c.target = string(target)
			}
		default:
			return fmt.Errorf("tree %s: entry %q has unknown mode %o", th, e.Name, e.Mode)
		}
		n.entries = append(n.entries, c)
	}
	// Git orders a folder "a" as if it were "a/"; fs.ReadDir wants plain
	// name order.
	sortEntries(n.entries)
	return nil
}

// charge checks object h (at path p) against the per-file bound and adds
// it to the revision's total, from its header alone.
func (b *treeBudget) charge(sto storer.EncodedObjectStorer, h plumbing.Hash, p string) error {
	size, err := objectSize(sto, h)
	if err != nil {
		return fmt.Errorf("object %s (%s): %w", h, p, err)
	}
	return b.add(path.Join(b.sub, p), size)
}

func (b *treeBudget) add(p string, size int64) error {
	if size > b.lim.MaxFileBytes {
		return &LimitError{Bound: BoundFileBytes, What: "file " + p, Size: size, Limit: b.lim.MaxFileBytes}
	}
	b.total += size
	if b.total > b.lim.MaxRevisionBytes {
		return &LimitError{Bound: BoundRevisionBytes, What: fmt.Sprintf("the files under %q (up to %s)", b.sub, p), Size: b.total, Limit: b.lim.MaxRevisionBytes, AtLeast: true}
	}
	return nil
}

// blobReads counts blobs read from object stores by this process (tree
// verification and file reads): what a Fetch costs in blob work, in its
// debug log line and in tests.
var blobReads atomic.Int64

// blobReader serialises reads: go-git's filesystem storage is not safe for
// concurrent use, an Artifact's FS is.
type blobReader struct {
	mu    sync.Mutex
	sto   storer.EncodedObjectStorer
	limit int64
}

func (r *blobReader) read(h plumbing.Hash) (data []byte, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	blobReads.Add(1)
	err = safely(func() error {
		o, err := readVerifiedMax(r.sto, h, r.limit)
		if err != nil {
			return err
		}
		if o.Type() != plumbing.BlobObject {
			return fmt.Errorf("%s is a %s, not a blob", h, o.Type())
		}
		rd, _ := o.Reader()
		data, err = io.ReadAll(rd)
		return err
	})
	return data, err
}

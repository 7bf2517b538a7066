package source

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// readVerified reads one object and checks that its content hashes to its
// name. go-git does not do that on read, and a damaged cache must be
// noticed, not handed out.
func readVerified(sto storer.EncodedObjectStorer, h plumbing.Hash) (*plumbing.MemoryObject, error) {
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

// buildGitArtifact verifies commit and every tree and blob under sub, and
// returns them as an Artifact whose FS reads blobs from sto on demand.
func buildGitArtifact(sto storer.EncodedObjectStorer, commit plumbing.Hash, ref, sub string) (Artifact, error) {
	co, err := readVerified(sto, commit)
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
	when := c.Committer.When
	th := c.TreeHash
	if sub != "." {
		for _, part := range strings.Split(sub, "/") {
			t, err := readTree(sto, th)
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
	if err := fillTree(sto, root, th); err != nil {
		return Artifact{}, err
	}
	msg, _, _ := strings.Cut(c.Message, "\n")
	br := &blobReader{sto: sto}
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

func readTree(sto storer.EncodedObjectStorer, h plumbing.Hash) (*object.Tree, error) {
	o, err := readVerified(sto, h)
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

// fillTree adds the entries of tree th below n, reading every blob once to
// verify it. Submodules are left out: their commits live elsewhere.
func fillTree(sto storer.EncodedObjectStorer, n *node, th plumbing.Hash) error {
	t, err := readTree(sto, th)
	if err != nil {
		return err
	}
	for _, e := range t.Entries {
		if !fs.ValidPath(e.Name) || strings.Contains(e.Name, "/") || e.Name == "." || e.Name == ".." {
			return fmt.Errorf("tree %s has an invalid entry name %q", th, e.Name)
		}
		c := &node{name: e.Name, modTime: n.modTime, hash: e.Hash}
		switch e.Mode {
		case filemode.Dir:
			c.mode = fs.ModeDir | 0o555
			if err := fillTree(sto, c, e.Hash); err != nil {
				return err
			}
		case filemode.Submodule:
			continue
		case filemode.Regular, filemode.Deprecated, filemode.Executable, filemode.Symlink:
			b, err := readVerified(sto, e.Hash)
			if err != nil {
				return err
			}
			if b.Type() != plumbing.BlobObject {
				return fmt.Errorf("%s is a %s, not a blob", e.Hash, b.Type())
			}
			c.size = b.Size()
			c.mode = 0o444
			if e.Mode == filemode.Executable {
				c.mode = 0o555
			}
			if e.Mode == filemode.Symlink {
				c.mode = fs.ModeSymlink | 0o777
				r, _ := b.Reader()
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

// blobReader serialises reads: go-git's filesystem storage is not safe for
// concurrent use, an Artifact's FS is.
type blobReader struct {
	mu  sync.Mutex
	sto storer.EncodedObjectStorer
}

func (r *blobReader) read(h plumbing.Hash) (data []byte, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	err = safely(func() error {
		o, err := readVerified(r.sto, h)
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

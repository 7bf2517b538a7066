package source

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// refList is what one ref lookup tells: every ref's object, HEAD's branch
// when the server names it, and the commit each annotated tag peels to.
type refList struct {
	head   string                   // branch HEAD points to; "" if not said
	headID plumbing.Hash            // HEAD's object when HEAD is not symbolic
	refs   map[string]plumbing.Hash // full name -> object (a tag object for annotated tags)
	peeled map[string]plumbing.Hash // full name -> commit, for annotated tags
}

// target is a resolved Options.Ref.
type target struct {
	name   string        // full ref name, or the hash for a pinned commit
	object plumbing.Hash // what to ask the server for: an advertised tip when there is one
	commit plumbing.Hash // the commit, when known before fetching (zero otherwise)
	pinned bool          // Ref is a commit hash
	tip    bool          // for pinned: object is an advertised tip, so any server serves it
}

// IsCommitID says whether s is a full lower-case SHA-1 commit id.
func IsCommitID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// resolveRef picks what Options.Ref means on a remote, the way git's
// rev-parse would, except that a short name matching both a branch and a
// tag is an error rather than a silent choice.
func resolveRef(rl refList, ref string) (target, error) {
	switch {
	case ref == "" || ref == "HEAD":
		return resolveHead(rl)
	case IsCommitID(strings.ToLower(ref)):
		h := plumbing.NewHash(strings.ToLower(ref))
		t := target{name: strings.ToLower(ref), object: h, commit: h, pinned: true}
		for _, name := range sortedNames(rl.refs) {
			if rl.refs[name] == h {
				t.tip = true
				return t, nil
			}
		}
		for _, name := range sortedNames(rl.peeled) {
			if rl.peeled[name] == h {
				// Servers serve the advertised tag object, not always the
				// commit behind it; fetching the tag brings the commit.
				t.object, t.tip = rl.refs[name], true
				return t, nil
			}
		}
		return t, nil
	case strings.HasPrefix(ref, "refs/"):
		if _, ok := rl.refs[ref]; !ok {
			return target{}, notFound(rl, ref)
		}
		return rl.target(ref), nil
	}
	var found []string
	for _, cand := range []string{"refs/" + ref, "refs/tags/" + ref, "refs/heads/" + ref} {
		if _, ok := rl.refs[cand]; ok {
			found = append(found, cand)
		}
	}
	switch len(found) {
	case 0:
		return target{}, notFound(rl, ref)
	case 1:
		return rl.target(found[0]), nil
	}
	return target{}, fmt.Errorf("ref %q is ambiguous: the remote has %s; set the full name", ref, strings.Join(found, " and "))
}

func (rl refList) target(name string) target {
	t := target{name: name, object: rl.refs[name], commit: rl.refs[name]}
	if c, ok := rl.peeled[name]; ok {
		t.commit = c
	}
	return t
}

func resolveHead(rl refList) (target, error) {
	if rl.head != "" {
		if _, ok := rl.refs[rl.head]; ok {
			return rl.target(rl.head), nil
		}
		return target{}, fmt.Errorf("the remote's HEAD points to %s, which does not exist; set Ref", rl.head)
	}
	if rl.headID.IsZero() {
		if len(rl.refs) == 0 {
			return target{}, errors.New("the remote repository is empty")
		}
		return target{}, errors.New("the remote does not say what HEAD is; set Ref")
	}
	// Without a symref, HEAD's branch is the one at the same commit, as git
	// clone guesses it: main or master first, else the first by name.
	var cands []string
	for _, name := range sortedNames(rl.refs) {
		if strings.HasPrefix(name, "refs/heads/") && rl.refs[name] == rl.headID {
			cands = append(cands, name)
		}
	}
	for _, pref := range []string{"refs/heads/main", "refs/heads/master"} {
		for _, c := range cands {
			if c == pref {
				return rl.target(c), nil
			}
		}
	}
	if len(cands) > 0 {
		return rl.target(cands[0]), nil
	}
	return target{name: "HEAD", object: rl.headID, commit: rl.headID}, nil
}

func notFound(rl refList, ref string) error {
	var branches []string
	for _, name := range sortedNames(rl.refs) {
		if b, ok := strings.CutPrefix(name, "refs/heads/"); ok {
			branches = append(branches, b)
		}
	}
	if len(branches) > 10 {
		branches = append(branches[:10], "...")
	}
	if len(branches) == 0 {
		return fmt.Errorf("ref %q not found on the remote (it has no branches)", ref)
	}
	return fmt.Errorf("ref %q not found on the remote (branches: %s)", ref, strings.Join(branches, ", "))
}

func sortedNames(m map[string]plumbing.Hash) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

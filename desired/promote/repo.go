package promote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"reconciler.dev/reconciler/desired/source"
)

// ErrNotFastForward says a branch cannot be moved to a commit that does
// not descend from its head: a rollout never rewinds nor forks a wave.
var ErrNotFastForward = errors.New("not a fast-forward")

// Repo is a remote repository the promoter reads and moves branches of.
type Repo struct {
	URL string
	// TokenFile, when set, holds an https token (sent as the password of
	// user git), as the agent's --git-token-file.
	TokenFile string

	repo *git.Repository
}

func (r *Repo) auth() (transport.AuthMethod, error) {
	if r.TokenFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(r.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("git token file: %w", err)
	}
	return &githttp.BasicAuth{Username: "git", Password: strings.TrimSpace(string(b))}, nil
}

// Heads fetches the named branches (those that exist) with their history,
// into memory, and returns each one's head; a missing branch is absent.
func (r *Repo) Heads(ctx context.Context, branches []string) (map[string]string, error) {
	auth, err := r.auth()
	if err != nil {
		return nil, err
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{r.URL}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", r.URL, err)
	}
	want := map[string]bool{}
	for _, b := range branches {
		want[plumbing.NewBranchReferenceName(b).String()] = true
	}
	heads := map[string]string{}
	var specs []config.RefSpec
	for _, ref := range refs {
		if want[ref.Name().String()] && ref.Type() == plumbing.HashReference {
			heads[ref.Name().Short()] = ref.Hash().String()
			specs = append(specs, config.RefSpec("+"+ref.Name().String()+":refs/remotes/origin/"+ref.Name().Short()))
		}
	}
	st := memory.NewStorage()
	repo, err := git.InitWithOptions(st, nil, git.InitOptions{DefaultBranch: plumbing.Main})
	if err != nil {
		return nil, err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.URL}}); err != nil {
		return nil, err
	}
	if len(specs) > 0 {
		err = repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: specs, Auth: auth, Tags: git.NoTags})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil, fmt.Errorf("fetching %s: %w", r.URL, err)
		}
	}
	r.repo = repo
	return heads, nil
}

// Descends says whether commit descends from (or is) base; both must have
// been fetched by Heads.
func (r *Repo) Descends(commit, base string) (bool, error) {
	if r.repo == nil {
		return false, errors.New("promote: Heads first")
	}
	if commit == base {
		return true, nil
	}
	c, err := r.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return false, fmt.Errorf("commit %s: %w", commit, err)
	}
	b, err := r.repo.CommitObject(plumbing.NewHash(base))
	if err != nil {
		return false, fmt.Errorf("commit %s: %w", base, err)
	}
	return b.IsAncestor(c)
}

// FastForward moves branch from its head old ("" when it does not exist
// yet) to commit, refusing anything but a fast-forward; the server refuses
// too if the branch moved in the meantime (the push is not forced).
func (r *Repo) FastForward(ctx context.Context, branch, old, commit string) error {
	if r.repo == nil {
		return errors.New("promote: Heads first")
	}
	if old != "" {
		ok, err := r.Descends(commit, old)
		if err != nil {
			return fmt.Errorf("%s: %w", branch, err)
		}
		if !ok {
			return fmt.Errorf("%s: %s does not descend from %s: %w", branch, source.Short(commit), source.Short(old), ErrNotFastForward)
		}
	}
	if _, err := r.repo.CommitObject(plumbing.NewHash(commit)); err != nil {
		return fmt.Errorf("%s: commit %s: %w", branch, source.Short(commit), err)
	}
	local := plumbing.ReferenceName("refs/promote/" + branch)
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(local, plumbing.NewHash(commit))); err != nil {
		return err
	}
	auth, err := r.auth()
	if err != nil {
		return err
	}
	spec := config.RefSpec(local.String() + ":" + plumbing.NewBranchReferenceName(branch).String())
	err = r.repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: auth})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("pushing %s to %s: %w", source.Short(commit), branch, err)
	}
	return nil
}

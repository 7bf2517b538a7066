package promote

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// origin is a bare repository with main at a <- b and a branch "side" at
// an unrelated commit x, reached over file://.
func origin(t *testing.T) (url string, a, b, x string) {
	t.Helper()
	bare := filepath.Join(t.TempDir(), "origin.git")
	if _, err := git.PlainInit(bare, true); err != nil {
		t.Fatal(err)
	}
	// Two work trees: main (a <- b) in one, the unrelated x in the other.
	push := func(branch string, msgs ...string) []string {
		work := t.TempDir()
		repo, err := git.PlainInitWithOptions(work, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)}})
		if err != nil {
			t.Fatal(err)
		}
		wt, _ := repo.Worktree()
		var ids []string
		for _, msg := range msgs {
			if err := os.WriteFile(filepath.Join(work, "f"), []byte(msg), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := wt.Add("f"); err != nil {
				t.Fatal(err)
			}
			h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, h.String())
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{bare}}); err != nil {
			t.Fatal(err)
		}
		ref := "refs/heads/" + branch
		if err := repo.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{config.RefSpec(ref + ":" + ref)}}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	m := push("main", "a", "b")
	a, b, x = m[0], m[1], push("side", "x")[0]
	return "file://" + bare, a, b, x
}

func TestFastForward(t *testing.T) {
	ctx := context.Background()
	url, a, b, x := origin(t)
	r := &Repo{URL: url}
	heads, err := r.Heads(ctx, []string{"main", "side", "rollout/canary"})
	if err != nil {
		t.Fatal(err)
	}
	if heads["main"] != b || heads["side"] != x || heads["rollout/canary"] != "" {
		t.Fatalf("heads %v", heads)
	}
	if ok, err := r.Descends(b, a); err != nil || !ok {
		t.Errorf("b descends from a: %v %v", ok, err)
	}
	if ok, _ := r.Descends(a, b); ok {
		t.Error("a descends from b")
	}
	// A new branch is created; then it only moves forward.
	if err := r.FastForward(ctx, "rollout/canary", "", a); err != nil {
		t.Fatal(err)
	}
	if err := r.FastForward(ctx, "rollout/canary", a, b); err != nil {
		t.Fatal(err)
	}
	if err := r.FastForward(ctx, "rollout/canary", b, x); !errors.Is(err, ErrNotFastForward) {
		t.Errorf("moving to an unrelated commit: %v, want ErrNotFastForward", err)
	}
	heads, err = (&Repo{URL: url}).Heads(ctx, []string{"rollout/canary"})
	if err != nil || heads["rollout/canary"] != b {
		t.Errorf("rollout/canary at %v (%v), want %s", heads, err, b)
	}
}

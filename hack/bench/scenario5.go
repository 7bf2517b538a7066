package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/storage/memory"

	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/internal/gitserver"
)

// Scenario 5: change detection. A repository with 5,000 commits and 2,000
// refs (main, 999 branches, 1,000 annotated tags), built with git
// fast-import, on the testbed's http git server. A poll when nothing
// changed: the reconciler's source (desired/source, as the agent runs it)
// against `git fetch` in a clone of the same repository (git 2.x, protocol
// v2, default refspec). Requests and bytes are the git server's own
// counters; the go-git v0/v1 ref lookup (the whole advertisement: what this
// source cost per poll before it spoke protocol v2) is measured alongside.

const (
	s5Commits  = 5000
	s5Branches = 999
	s5Tags     = 1000
)

func init() { register(5, nil, (*bench).scenario5) }

func (b *bench) scenario5(ctx context.Context) error {
	e := b.e
	repo, err := e.newRepo("history")
	if err != nil {
		return err
	}
	start := time.Now()
	if err := fastImport(repo.bare); err != nil {
		return err
	}
	e.logf("  built %d commits and %d refs in %s", s5Commits, 1+s5Branches+s5Tags, time.Since(start).Round(100*time.Millisecond))

	src, err := source.Open(source.Options{URL: repo.httpURL, CacheDir: filepath.Join(e.work, "cache-history")})
	if err != nil {
		return err
	}
	if _, _, err := src.Fetch(ctx); err != nil {
		return err
	}
	clone := filepath.Join(e.work, "clone-history")
	if out, err := exec.CommandContext(ctx, "git", "clone", "-q", repo.httpURL, clone).CombinedOutput(); err != nil {
		return fmt.Errorf("git clone: %v\n%s", err, out)
	}

	type cost struct{ requests, bytes, out, in sample }
	var rec, gitFetch, v0, floorC cost
	var fl paired // a: the reconciler's wall, b: the floor's
	measure := func(c *cost, f func() error) (float64, error) {
		before, err := repo.stats()
		if err != nil {
			return 0, err
		}
		t := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		wall := time.Since(t)
		after, err := repo.stats()
		if err != nil {
			return 0, err
		}
		d := diff(before, after)
		c.requests = append(c.requests, float64(d.Requests))
		c.out = append(c.out, float64(d.BytesOut))
		c.in = append(c.in, float64(d.BytesIn))
		c.bytes = append(c.bytes, float64(d.BytesOut+d.BytesIn))
		return seconds(wall), nil
	}
	wall, err := alternate(b.cfg.pairs,
		func(int) (float64, error) {
			w, err := measure(&rec, func() error {
				_, changed, err := src.Fetch(ctx)
				if err == nil && changed {
					err = fmt.Errorf("a poll with nothing new said changed")
				}
				return err
			})
			if err != nil {
				return 0, err
			}
			// The floor: one ls-refs for main by a minimal client.
			f, err := measure(&floorC, func() error { return floorLsRefs(ctx, repo.httpURL, "refs/heads/main") })
			fl.a, fl.b = append(fl.a, w), append(fl.b, f)
			return w, err
		},
		func(int) (float64, error) {
			w, err := measure(&gitFetch, func() error {
				out, err := exec.CommandContext(ctx, "git", "-C", clone, "fetch", "-q").CombinedOutput()
				if err != nil {
					return fmt.Errorf("git fetch: %v\n%s", err, out)
				}
				return nil
			})
			if err != nil {
				return 0, err
			}
			// Before protocol v2: the go-git v0/v1 lookup (not timed).
			_, err = measure(&v0, func() error {
				r := git.NewRemote(memory.NewStorage(), &gitconfig.RemoteConfig{Name: "origin", URLs: []string{repo.httpURL}})
				_, err := r.ListContext(ctx, &git.ListOptions{})
				return err
			})
			return w, err
		})
	if err != nil {
		return err
	}
	describe := func(c cost) string {
		return fmt.Sprintf("%s request(s), %s (%s out, %s in)", sig(c.requests.median()), fmtBytes(c.bytes.median()),
			fmtBytes(c.out.median()), fmtBytes(c.in.median()))
	}
	bytesRatio := paired{a: rec.bytes, b: gitFetch.bytes}
	small := rec.requests.max() == 1 && rec.bytes.max() < 1024
	flBytes := paired{a: rec.bytes, b: floorC.bytes}
	flo, flr := fmtFloor(flBytes, func(s sample) string { return "1 ls-refs: " + describe(floorC) })
	b.add(row{
		scenario:   fmt.Sprintf("5. poll, nothing changed: %d commits, %d refs (bytes)", s5Commits, 1+s5Branches+s5Tags),
		reconciler: describe(rec),
		floor:      flo,
		floorRatio: flr,
		baseline:   "`git fetch`: " + describe(gitFetch),
		ratio:      fmtRatio(bytesRatio),
		calls:      "before protocol v2 (go-git v0/v1 lookup): " + describe(v0),
		target:     verdict(small, "a single small request (< 1 KiB)", describe(rec)) + "; " + floorVerdict(flBytes),
	})
	flo, flr = fmtFloor(fl, fmtMillis)
	b.add(row{
		scenario:   "5. poll, nothing changed (wall time)",
		reconciler: fmtMillis(wall.a), baseline: "`git fetch`: " + fmtMillis(wall.b), ratio: fmtRatio(wall),
		floor:      flo,
		floorRatio: flr,
		calls:      "—", target: floorVerdict(fl),
	})
	return nil
}

func diff(a, b gitserver.Counts) gitserver.Counts {
	return gitserver.Counts{Requests: b.Requests - a.Requests, BytesOut: b.BytesOut - a.BytesOut, BytesIn: b.BytesIn - a.BytesIn}
}

// fastImport writes the history into the bare repository at dir.
func fastImport(dir string) error {
	var s bytes.Buffer
	ts := int64(1767225600) // 2026-01-01
	data := func(text string) { fmt.Fprintf(&s, "data %d\n%s\n", len(text), text) }
	for i := 1; i <= s5Commits; i++ {
		fmt.Fprintf(&s, "commit refs/heads/main\nmark :%d\ncommitter bench <bench@localhost> %d +0000\n", i, ts+int64(i)*60)
		data(fmt.Sprintf("change %d", i))
		if i > 1 {
			fmt.Fprintf(&s, "from :%d\n", i-1)
		}
		s.WriteString("M 644 inline hosts/bench-01.yaml\n")
		data(fmt.Sprintf("apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: bench-01\nspec:\n  services:\n    - name: svc\n      replicas: %d\n", i%3))
		s.WriteString("\n")
	}
	for i := 0; i < s5Branches; i++ {
		fmt.Fprintf(&s, "reset refs/heads/feature/%04d\nfrom :%d\n\n", i, 1+i*5)
	}
	for i := 0; i < s5Tags; i++ {
		fmt.Fprintf(&s, "tag v%04d\nfrom :%d\ntagger bench <bench@localhost> %d +0000\n", i, 3+i*5, ts)
		data(fmt.Sprintf("release %d", i))
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_DIR="+dir)
	cmd.Stdin = &s
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git fast-import: %v\n%s", err, out)
	}
	return nil
}

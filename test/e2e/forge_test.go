//go:build e2e

package e2e

// The forge loop against a real Gitea (hack/testbed runs one): Gitea's own
// webhook deliveries trigger the agent's passes, the agent's commit statuses
// are read back through Gitea's API, and `reconciler diff -o markdown` is
// posted as a pull request comment.

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/internal/filetree"
)

// gitea is the testbed's Gitea, through its API as the admin.
type gitea struct {
	t     testing.TB
	url   string
	user  string
	token string
}

func newGitea(t testing.TB) *gitea {
	t.Helper()
	tb := testbed(t)
	if tb.GiteaURL == "" || tb.GiteaTokenFile == "" {
		t.Fatal("hack/testbed env names no Gitea (TESTBED_GITEA_URL, TESTBED_GITEA_TOKEN_FILE): run hack/testbed up")
	}
	tok, err := os.ReadFile(tb.GiteaTokenFile)
	if err != nil {
		t.Fatalf("the Gitea token: %v", err)
	}
	return &gitea{t: t, url: tb.GiteaURL, user: tb.GiteaUser, token: strings.TrimSpace(string(tok))}
}

// call sends one API request; out, when not nil, gets the JSON answer. A
// status other than want fails the test.
func (g *gitea) call(method, path string, in any, want int, out any) {
	g.t.Helper()
	a, err := httpCall(30*time.Second, method, g.url+"/api/v1"+path, in, "Authorization", "token "+g.token, "Content-Type", "application/json")
	if err != nil {
		g.t.Fatalf("Gitea %s %s: %v", method, path, err)
	}
	if a.Code != want {
		g.t.Fatalf("Gitea %s %s: %s, want %d: %s", method, path, a.Status, want, a.Body)
	}
	if out != nil {
		if err := a.decode(out); err != nil {
			g.t.Fatalf("Gitea %s %s: %v: %s", method, path, err, a.Body)
		}
	}
}

// giteaStatus is one commit status as Gitea's API lists it.
type giteaStatus struct {
	Status      string `json:"status"`
	State       string `json:"state"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
}

func (s giteaStatus) state() string {
	if s.State != "" {
		return s.State
	}
	return s.Status
}

// statusOfCommit waits until Gitea holds a status of context for sha in
// state, and returns it.
func (g *gitea) statusOfCommit(repo, sha, context, state string, within time.Duration) giteaStatus {
	g.t.Helper()
	var found giteaStatus
	eventually(g.t, within, fmt.Sprintf("Gitea status %s of %s for %s", state, context, shortRev(sha)), func() error {
		var list []giteaStatus
		g.call(http.MethodGet, "/repos/"+g.user+"/"+repo+"/commits/"+sha+"/statuses?sort=newest", nil, http.StatusOK, &list)
		var seen []string
		for _, s := range list {
			if s.Context == context {
				seen = append(seen, s.state()+": "+s.Description)
				if s.state() == state {
					found = s
					return nil
				}
			}
		}
		return fmt.Errorf("statuses of %s so far: %q", context, seen)
	})
	return found
}

func giteaHost(name, role, spec string) string {
	return fmt.Sprintf("apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: %s, labels: {role: %s}}\nspec:\n%s", name, role, spec)
}

func pollerDefaults(extra string) string {
	return "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: pollers}\nspec:\n  selector: {matchLabels: {role: poller}}\n  drift: enforce\n" + extra
}

// TestForgeLoopGitea: a commit pushed to Gitea reaches the agent through
// Gitea's own webhook delivery (the agent polls only hourly), and the commit
// status reconciler/<host> reads back success through Gitea's API; a bad
// commit reads back failure with file:line; a pull request changing a
// Defaults that selects 2 of 3 hosts gets `reconciler diff -o markdown` as
// its comment, naming exactly those 2 hosts.
func TestForgeLoopGitea(t *testing.T) {
	tb := testbed(t)
	g := newGitea(t)
	repo := uniqueName("forge")
	g.call(http.MethodPost, "/user/repos", map[string]any{"name": repo, "private": false, "default_branch": "main"}, http.StatusCreated, nil)
	t.Cleanup(func() { g.call(http.MethodDelete, "/repos/"+g.user+"/"+repo, nil, http.StatusNoContent, nil) })
	cloneURL := g.url + "/" + g.user + "/" + repo + ".git"
	u, _ := url.Parse(cloneURL)
	u.User = url.UserPassword(g.user, g.token)
	pushURL := u.String()

	// The agent's host g1 runs one real daemontools service; g2 and g3 are
	// pollers the agent does not run, for the pull request's diff.
	const host = "g1"
	name := uniqueName("forge-svc")
	dirs := dtInstall(t, dtDaemontools, tb.SvscanDir, map[string]string{name: "#!/bin/sh\nexec sleep 3600\n"}, map[string]bool{name: true})
	svc := func(replicas string) string {
		return fmt.Sprintf("  services:\n    - name: %s\n      driver: daemontools\n      dir: %s\n      replicas: %s\n", name, dirs[name], replicas)
	}
	work := t.TempDir()
	run(t, work, "git", "init", "-q", "-b", "main")
	run(t, work, "git", "remote", "add", "origin", pushURL)
	commit := func(branch, msg string, files map[string]string) string {
		t.Helper()
		if err := filetree.Write(work, files); err != nil {
			t.Fatal(err)
		}
		run(t, work, "git", "add", "-A")
		run(t, work, "git", "-c", "user.name=Operator", "-c", "user.email=op@127.0.0.1.invalid", "commit", "-q", "-m", msg)
		run(t, work, "git", "push", "-q", "origin", "HEAD:refs/heads/"+branch)
		return strings.TrimSpace(run(t, work, "git", "rev-parse", "HEAD"))
	}
	c1 := commit("main", "three hosts", map[string]string{
		"defaults/pollers.yaml": pollerDefaults(""),
		"hosts/g1.yaml":         giteaHost(host, "proxy", svc("0")),
		"hosts/g2.yaml":         giteaHost("g2", "poller", "  drift: report\n"),
		"hosts/g3.yaml":         giteaHost("g3", "poller", "  drift: report\n"),
	})

	secret, secretFile := newWebhookSecret(t)
	statusURL := "http://127.0.0.1/reconciler/" + host
	a := startAgent(t, agentConfig{Source: cloneURL, Host: host, Interval: "1h", Args: []string{
		"--webhook-secret-file", secretFile,
		"--forge-api", g.url + "/api/v1", "--forge-repo", g.user + "/" + repo, "--forge-token-file", tb.GiteaTokenFile,
		"--forge-status-url", statusURL, "--forge-min-interval", "100ms",
	}})
	awaitConverged(t, a, c1, time.Minute)
	ctxName := "reconciler/" + host
	st := g.statusOfCommit(repo, c1, ctxName, "success", 30*time.Second)
	t.Logf("c1 %s: %s %q (target %s)", shortRev(c1), st.state(), st.Description, st.TargetURL)
	if st.TargetURL != statusURL {
		t.Errorf("target URL %q, want %q", st.TargetURL, statusURL)
	}

	// Gitea's own webhook, to the agent, for pushes and pull requests.
	g.call(http.MethodPost, "/repos/"+g.user+"/"+repo+"/hooks", map[string]any{
		"type": "gitea", "active": true, "events": []string{"push", "pull_request"}, "branch_filter": "*",
		"config": map[string]string{"url": "http://" + a.Addr + "/webhook", "content_type": "json", "secret": secret},
	}, http.StatusCreated, nil)

	// A push that starts the service: only Gitea's delivery can trigger
	// this pass (interval 1h).
	pushed := time.Now()
	c2 := commit("main", "start the service", map[string]string{"hosts/g1.yaml": giteaHost(host, "proxy", svc("1"))})
	st2 := awaitConverged(t, a, c2, time.Minute)
	if st2.LastPass == nil || st2.LastPass.Trigger != "webhook" {
		t.Fatalf("the pass applying %s was not triggered by Gitea's webhook: %+v", shortRev(c2), st2.LastPass)
	}
	dtExpect(t, dtDaemontools, dirs, map[string]string{name: "up"})
	s2 := g.statusOfCommit(repo, c2, ctxName, "success", 30*time.Second)
	t.Logf("c2 %s: push -> converged %s; status %s %q", shortRev(c2), time.Since(pushed).Round(time.Millisecond), s2.state(), s2.Description)

	// A bad commit: refused, failure with file:line, the good one stays.
	c3 := commit("main", "negative replicas", map[string]string{"hosts/g1.yaml": giteaHost(host, "proxy", svc("-1"))})
	s3 := g.statusOfCommit(repo, c3, ctxName, "failure", time.Minute)
	t.Logf("c3 %s: status %s %q", shortRev(c3), s3.state(), s3.Description)
	if !strings.Contains(s3.Description, "hosts/g1.yaml:9:") {
		t.Errorf("the failure of %s does not name hosts/g1.yaml:9: (the replicas line) %q", shortRev(c3), s3.Description)
	}
	dtExpect(t, dtDaemontools, dirs, map[string]string{name: "up"})

	// Fixed on main, then a pull request: a Defaults change selecting g2
	// and g3, not g1.
	c4 := commit("main", "fix", map[string]string{"hosts/g1.yaml": giteaHost(host, "proxy", svc("1")+"  drift: enforce\n")})
	g.statusOfCommit(repo, c4, ctxName, "success", time.Minute)
	c5 := commit("pr", "pollers into maintenance", map[string]string{
		"defaults/pollers.yaml": pollerDefaults("  maintenance: {enabled: true, reason: switch firmware}\n"),
	})
	var pr struct {
		Number int `json:"number"`
	}
	g.call(http.MethodPost, "/repos/"+g.user+"/"+repo+"/pulls", map[string]any{"title": "pollers into maintenance", "head": "pr", "base": "main"}, http.StatusCreated, &pr)
	// The push to pr and the pull request event are delivered too, and
	// ignored: the revision in force stays c4.
	eventually(t, 30*time.Second, "the agent to record Gitea's push to refs/heads/pr as ignored", func() error {
		for _, ev := range statusOf(t, a.Addr).Events {
			if ev.Type == "webhook" && strings.Contains(ev.Message, "push to refs/heads/pr, not to the followed refs/heads/main") {
				return nil
			}
		}
		return fmt.Errorf("no such event yet")
	})
	if got := statusOf(t, a.Addr).Revision; got == nil || got.ID != c4 {
		t.Fatalf("revision in force %+v, want %s", got, shortRev(c4))
	}

	d := cli(t, nil, "diff", "--source", cloneURL, "--base", "main", "--head", "pr", "--cache-dir", t.TempDir(), "-o", "markdown").mustCode(t, 2, "diff of the pull request")
	g.call(http.MethodPost, fmt.Sprintf("/repos/%s/%s/issues/%d/comments", g.user, repo, pr.Number), map[string]string{"body": d.Stdout}, http.StatusCreated, nil)
	var comments []struct {
		Body string `json:"body"`
	}
	g.call(http.MethodGet, fmt.Sprintf("/repos/%s/%s/issues/%d/comments", g.user, repo, pr.Number), nil, http.StatusOK, &comments)
	if len(comments) != 1 {
		t.Fatalf("pull request #%d has %d comments, want 1", pr.Number, len(comments))
	}
	body := comments[0].Body
	t.Logf("pull request #%d (head %s), its comment read back:\n%s", pr.Number, shortRev(c5), body)
	var named []string
	for _, line := range strings.Split(body, "\n") {
		if h, ok := strings.CutPrefix(line, "#### `"); ok {
			h, _, _ = strings.Cut(h, "`")
			named = append(named, h)
		}
	}
	sort.Strings(named)
	if strings.Join(named, ",") != "g2,g3" {
		t.Errorf("the comment names hosts %q, want exactly g2 and g3", named)
	}
	if !strings.Contains(body, "`spec.maintenance.enabled` | `(absent)` | `true`") {
		t.Errorf("the comment does not show spec.maintenance.enabled (absent) -> true")
	}
}

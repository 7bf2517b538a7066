//go:build e2e

package e2e

// The git source against real git servers: the testbed's http server (git
// http-backend behind internal/gitserver, whose counters prove what a poll
// costs), file://, an in-process http server that a test stops, and a real
// sshd.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/internal/gitserver"
)

var desiredFiles = map[string]string{
	"hosts/fp-01.yaml":      "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: fp-01}\n",
	"defaults/plant-a.yaml": "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: plant-a}\n",
}

// gitStats reads the testbed git server's counters for one repository.
func gitStats(t *testing.T, repo string) gitserver.Counts {
	t.Helper()
	tb := testbed(t)
	resp, err := http.Get(tb.GitHTTPURL + "/_stats?repo=" + repo)
	if err != nil {
		t.Fatalf("git server stats: %v", err)
	}
	defer resp.Body.Close()
	var c gitserver.Counts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatalf("git server stats: %v", err)
	}
	return c
}

func openSource(t *testing.T, o source.Options) source.Source {
	t.Helper()
	s, err := source.Open(o)
	if err != nil {
		t.Fatalf("source.Open(%s): %v", o.URL, err)
	}
	return s
}

func fetch(t *testing.T, s source.Source) (source.Artifact, bool) {
	t.Helper()
	a, changed, err := s.Fetch(ctxT(t, time.Minute))
	if err != nil {
		t.Fatalf("Fetch %s: %v", s, err)
	}
	return a, changed
}

// treeFiles lists every regular file of an artifact with its content.
func treeFiles(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("walk artifact: %v", err)
	}
	return out
}

func sameFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSourceFetchOverHTTPAndFile(t *testing.T) {
	repo := newGitRepo(t, "src-fetch")
	commit := repo.Commit("put fp-01 under management\n\nThe runbook step 3 as code.", desiredFiles)
	author := run(t, repo.WorkTree, "git", "log", "-1", "--format=%an <%ae>")

	for _, url := range []string{repo.HTTPURL, repo.FileURL} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			s := openSource(t, source.Options{URL: url, CacheDir: t.TempDir()})
			if s.String() != url {
				t.Errorf("String() = %q, want %q", s.String(), url)
			}
			a, changed := fetch(t, s)
			if !changed {
				t.Error("first Fetch: changed=false")
			}
			rev := a.Revision
			if rev.ID != commit || rev.Ref != "refs/heads/main" || rev.Author != author ||
				rev.Message != "put fp-01 under management" || rev.Time.IsZero() {
				t.Errorf("Revision = %+v; want ID %s, ref refs/heads/main, author %q, first line of the message", rev, commit, author)
			}
			if got := treeFiles(t, a.FS); !sameFiles(got, desiredFiles) {
				t.Errorf("files = %v, want %v", got, desiredFiles)
			}

			// Narrowed to a folder.
			sub := openSource(t, source.Options{URL: url, CacheDir: t.TempDir(), Path: "hosts"})
			a, _ = fetch(t, sub)
			if got := treeFiles(t, a.FS); !sameFiles(got, map[string]string{"fp-01.yaml": desiredFiles["hosts/fp-01.yaml"]}) {
				t.Errorf("Path hosts: files = %v", got)
			}
		})
	}
}

func TestSourceRefMovesCostsCountedAtTheServer(t *testing.T) {
	repo := newGitRepo(t, "src-cost")
	first := repo.Commit("first", desiredFiles)
	cache := t.TempDir()
	s := openSource(t, source.Options{URL: repo.HTTPURL, CacheDir: cache})

	if a, _ := fetch(t, s); a.Revision.ID != first {
		t.Fatalf("Fetch = %s, want %s", a.Revision.ID, first)
	}

	// Nothing new: one ref lookup, no upload-pack. The lookup is a protocol
	// v2 ls-refs for the one branch, so 2,000 other refs on the server do
	// not make it bigger.
	var refs strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&refs, "create refs/heads/feature/%04d %s\ncreate refs/tags/build-%04d %s\n", i, first, i, first)
	}
	cmd := exec.Command("git", "-C", repo.Bare, "update-ref", "--stdin")
	cmd.Stdin = strings.NewReader(refs.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("creating 2000 refs: %v\n%s", err, out)
	}
	before := gitStats(t, repo.Name)
	a, changed := fetch(t, s)
	after := gitStats(t, repo.Name)
	if changed || a.Revision.ID != first {
		t.Errorf("unchanged Fetch: changed=%v id=%s", changed, a.Revision.ID)
	}
	if d := after.Requests - before.Requests; d != 1 {
		t.Errorf("unchanged Fetch cost %d requests at the server, want exactly 1 (%v -> %v)", d, before.ByService, after.ByService)
	}
	if d := after.UploadPacks - before.UploadPacks; d != 0 {
		t.Errorf("unchanged Fetch cost %d upload-packs, want 0", d)
	}
	if d := after.ByService["git-upload-pack ls-refs"] - before.ByService["git-upload-pack ls-refs"]; d != 1 {
		t.Errorf("unchanged Fetch: %d ls-refs requests, want the one request to be ls-refs (%v -> %v)", d, before.ByService, after.ByService)
	}
	if d := after.BytesOut - before.BytesOut; d > 512 {
		t.Errorf("unchanged Fetch with 2000 refs on the server: %d bytes in the answer, want a line or two (< 512)", d)
	}

	// The ref moves (pushed over file://, so the http counters see only us).
	second := repo.Commit("second", map[string]string{"hosts/fp-01.yaml": desiredFiles["hosts/fp-01.yaml"] + "spec: {maintenance: true}\n"})
	before = gitStats(t, repo.Name)
	a, changed = fetch(t, s)
	after = gitStats(t, repo.Name)
	if !changed || a.Revision.ID != second || a.Revision.Message != "second" {
		t.Errorf("Fetch after a push: changed=%v id=%s msg=%q, want %s", changed, a.Revision.ID, a.Revision.Message, second)
	}
	if d := after.UploadPacks - before.UploadPacks; d != 1 {
		t.Errorf("changed Fetch cost %d upload-packs, want exactly 1", d)
	}
	// The lookup and the fetch: ls-refs + fetch, two POSTs.
	if d := after.Requests - before.Requests; d != 2 {
		t.Errorf("changed Fetch cost %d requests, want 2 (%v -> %v)", d, before.ByService, after.ByService)
	}
	if b, _ := fs.ReadFile(a.FS, "hosts/fp-01.yaml"); !strings.Contains(string(b), "maintenance: true") {
		t.Errorf("hosts/fp-01.yaml = %q", b)
	}

	// A restarted agent knows the commit from the cache: still one lookup.
	restarted := openSource(t, source.Options{URL: repo.HTTPURL, CacheDir: cache})
	before = gitStats(t, repo.Name)
	a, changed = fetch(t, restarted)
	after = gitStats(t, repo.Name)
	if changed || a.Revision.ID != second {
		t.Errorf("after restart: changed=%v id=%s", changed, a.Revision.ID)
	}
	if dr, du := after.Requests-before.Requests, after.UploadPacks-before.UploadPacks; dr != 1 || du != 0 {
		t.Errorf("after restart: %d requests, %d upload-packs; want 1 and 0", dr, du)
	}
}

func TestSourceForcePushedBranch(t *testing.T) {
	repo := newGitRepo(t, "src-force")
	repo.Commit("one", desiredFiles)
	two := repo.Commit("two", map[string]string{"hosts/fp-01.yaml": "two\n"})
	s := openSource(t, source.Options{URL: repo.HTTPURL, CacheDir: t.TempDir()})
	if a, _ := fetch(t, s); a.Revision.ID != two {
		t.Fatalf("Fetch = %s, want %s", a.Revision.ID, two)
	}

	// History rewritten: "rewritten" is a child of "one", not of "two".
	run(t, repo.WorkTree, "git", "reset", "-q", "--hard", "HEAD~1")
	rewritten := repo.Commit("rewritten", map[string]string{"hosts/fp-01.yaml": "rewritten\n"})
	if exec.Command("git", "-C", repo.WorkTree, "merge-base", "--is-ancestor", two, rewritten).Run() == nil {
		t.Fatalf("%s is an ancestor of %s: the history was not rewritten", two, rewritten)
	}
	a, changed := fetch(t, s)
	if !changed || a.Revision.ID != rewritten {
		t.Fatalf("after force push: changed=%v id=%s, want %s", changed, a.Revision.ID, rewritten)
	}
	if b, _ := fs.ReadFile(a.FS, "hosts/fp-01.yaml"); string(b) != "rewritten\n" {
		t.Errorf("hosts/fp-01.yaml = %q", b)
	}
}

func TestSourceUnreachableServerKeepsLastRevision(t *testing.T) {
	tb := testbed(t)
	repo := newGitRepo(t, "src-down")
	commit := repo.Commit("before the outage", desiredFiles)

	srv := httptest.NewServer(gitserver.New(tb.GitRoot))
	url := srv.URL + "/" + repo.Name
	cache := t.TempDir()
	s := openSource(t, source.Options{URL: url, CacheDir: cache, Timeout: 3 * time.Second})
	if a, _ := fetch(t, s); a.Revision.ID != commit {
		t.Fatalf("Fetch = %s, want %s", a.Revision.ID, commit)
	}
	srv.Close()

	start := time.Now()
	_, _, err := s.Fetch(ctxT(t, time.Minute))
	took := time.Since(start)
	if err == nil {
		t.Fatal("Fetch with the server stopped succeeded")
	}
	if took > 10*time.Second {
		t.Errorf("Fetch took %s to fail, want well under 10s (Timeout 3s)", took)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("error %q does not name %s", err, url)
	}
	t.Logf("server down: %v (after %s)", err, took.Round(time.Millisecond))

	for name, src := range map[string]source.Source{
		"same source":       s,
		"restarted, no net": openSource(t, source.Options{URL: url, CacheDir: cache, Timeout: 3 * time.Second}),
	} {
		a, err := src.Last(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatalf("%s: Last: %v", name, err)
		}
		if a.Revision.ID != commit || a.Revision.Message != "before the outage" {
			t.Errorf("%s: Last = %+v, want %s", name, a.Revision, commit)
		}
		if got := treeFiles(t, a.FS); !sameFiles(got, desiredFiles) {
			t.Errorf("%s: Last files = %v", name, got)
		}
	}

	// A server that accepts connections but never answers: the Timeout
	// bounds the wait.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	hung := "http://" + ln.Addr().String() + "/" + repo.Name
	hs := openSource(t, source.Options{URL: hung, CacheDir: t.TempDir(), Timeout: 3 * time.Second})
	start = time.Now()
	_, _, err = hs.Fetch(ctxT(t, time.Minute))
	took = time.Since(start)
	if err == nil || took > 10*time.Second || took < 2*time.Second {
		t.Errorf("Fetch from a silent server: err=%v after %s; want an error after about 3s", err, took)
	}
	if err != nil && !strings.Contains(err.Error(), hung) {
		t.Errorf("error %q does not name %s", err, hung)
	}
}

func TestSourceCorruptCacheIsRebuilt(t *testing.T) {
	repo := newGitRepo(t, "src-corrupt")
	commit := repo.Commit("first", desiredFiles)
	cache := t.TempDir()
	s := openSource(t, source.Options{URL: repo.HTTPURL, CacheDir: cache})
	fetch(t, s)

	// Every file in the cache overwritten with random bytes of its size.
	var garbled int
	filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			info, _ := d.Info()
			junk := make([]byte, info.Size()+1)
			rand.Read(junk)
			writeFile(t, p, junk, 0o644)
			garbled++
		}
		return nil
	})
	if garbled < 3 {
		t.Fatalf("only %d files in the cache to garble", garbled)
	}
	if _, err := s.Last(ctxT(t, 10*time.Second)); err == nil {
		t.Error("Last handed out a garbled cache")
	}

	before := gitStats(t, repo.Name)
	a, _ := fetch(t, s)
	after := gitStats(t, repo.Name)
	if a.Revision.ID != commit {
		t.Fatalf("Fetch after garbling = %s, want %s", a.Revision.ID, commit)
	}
	if got := treeFiles(t, a.FS); !sameFiles(got, desiredFiles) {
		t.Errorf("files after rebuild = %v", got)
	}
	if d := after.UploadPacks - before.UploadPacks; d != 1 {
		t.Errorf("rebuild fetched %d times, want 1", d)
	}
	// And the rebuilt cache serves a restart.
	if a, err := openSource(t, source.Options{URL: repo.HTTPURL, CacheDir: cache}).Last(ctxT(t, 10*time.Second)); err != nil || a.Revision.ID != commit {
		t.Errorf("Last after rebuild = %v, %v", a.Revision.ID, err)
	}
}

// sshd is a real OpenSSH server on a free loopback port, for one test.
type sshd struct {
	port       int
	hostPub    string // "ssh-ed25519 AAAA..."
	clientKey  string // private key file the server accepts for root
	stderr     *bytes.Buffer
	knownHosts func(content string) string // writes a known_hosts file
}

func startSSHD(t *testing.T) *sshd {
	t.Helper()
	const bin = "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: openssh-server is not installed (hack/testbed up installs it): %v", bin, err)
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatalf("ssh-keygen is missing (openssh-client): %v", err)
	}
	dir := t.TempDir()
	keygen := func(name string) string {
		p := filepath.Join(dir, name)
		run(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p)
		return p
	}
	hostKey := keygen("host_key")
	clientKey := keygen("client_key")
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	writeFile(t, authorized, pub, 0o600)
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	cfg := filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
`, port, hostKey, filepath.Join(dir, "sshd.pid"), authorized)
	writeFile(t, cfg, conf, 0o600)
	// sshd's privilege separation needs this folder; systemd would make it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", stderr.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	eventually(t, 10*time.Second, "sshd listening on "+addr, func() error {
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	s := &sshd{port: port, hostPub: strings.TrimSpace(string(hostPub)), clientKey: clientKey, stderr: &stderr}
	s.knownHosts = func(content string) string {
		f, err := os.CreateTemp(dir, "known_hosts")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString("# written by the test\n" + content); err != nil {
			t.Fatal(err)
		}
		return f.Name()
	}
	return s
}

func TestSourceSSH(t *testing.T) {
	repo := newGitRepo(t, "src-ssh")
	first := repo.Commit("first", desiredFiles)
	d := startSSHD(t)
	url := fmt.Sprintf("ssh://root@127.0.0.1:%d%s", d.port, repo.Bare)

	t.Run("known host", func(t *testing.T) {
		s := openSource(t, source.Options{
			URL: url, CacheDir: t.TempDir(), Timeout: 10 * time.Second,
			SSHKeyFile:     d.clientKey,
			KnownHostsFile: d.knownHosts(fmt.Sprintf("[127.0.0.1]:%d %s\n", d.port, d.hostPub)),
		})
		a, changed := fetch(t, s)
		if !changed || a.Revision.ID != first || a.Revision.Ref != "refs/heads/main" {
			t.Fatalf("Fetch over ssh: changed=%v %+v, want %s", changed, a.Revision, first)
		}
		if got := treeFiles(t, a.FS); !sameFiles(got, desiredFiles) {
			t.Errorf("files = %v", got)
		}
		if _, changed := fetch(t, s); changed {
			t.Error("second Fetch over ssh: changed=true")
		}
		// The next commit comes shallow on top of the first (haves and
		// shallow lines over a stateful connection).
		second := repo.Commit("second", map[string]string{"hosts/fp-01.yaml": "second\n"})
		a, changed = fetch(t, s)
		if !changed || a.Revision.ID != second {
			t.Fatalf("Fetch after a commit: changed=%v id=%s, want %s", changed, a.Revision.ID, second)
		}
		if b, _ := fs.ReadFile(a.FS, "hosts/fp-01.yaml"); string(b) != "second\n" {
			t.Errorf("hosts/fp-01.yaml = %q", b)
		}
		if b, _ := fs.ReadFile(a.FS, "defaults/plant-a.yaml"); string(b) != desiredFiles["defaults/plant-a.yaml"] {
			t.Errorf("unchanged file defaults/plant-a.yaml = %q", b)
		}
	})

	// A commit no ref points to: sshd's upload-pack does not hand out
	// unadvertised commits, so this is the full-fetch fallback.
	t.Run("pinned older commit", func(t *testing.T) {
		s := openSource(t, source.Options{
			URL: url, Ref: first, CacheDir: t.TempDir(), Timeout: 10 * time.Second,
			SSHKeyFile:     d.clientKey,
			KnownHostsFile: d.knownHosts(fmt.Sprintf("[127.0.0.1]:%d %s\n", d.port, d.hostPub)),
		})
		a, _ := fetch(t, s)
		if a.Revision.ID != first || a.Revision.Ref != first {
			t.Fatalf("pinned over ssh: %+v, want %s", a.Revision, first)
		}
		if got := treeFiles(t, a.FS); !sameFiles(got, desiredFiles) {
			t.Errorf("files = %v", got)
		}
	})

	other := filepath.Join(t.TempDir(), "other")
	run(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other)
	otherPub, err := os.ReadFile(other + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	otherLine := strings.TrimSpace(string(otherPub))
	for name, kh := range map[string]string{
		"mismatched host key": d.knownHosts(fmt.Sprintf("[127.0.0.1]:%d %s\n", d.port, otherLine)),
		// known_hosts knows another server, not this one.
		"unknown host": d.knownHosts("[127.0.0.1]:1 " + otherLine + "\n"),
	} {
		t.Run(name, func(t *testing.T) {
			s := openSource(t, source.Options{
				URL: url, CacheDir: t.TempDir(), Timeout: 10 * time.Second,
				SSHKeyFile: d.clientKey, KnownHostsFile: kh,
			})
			_, _, err := s.Fetch(ctxT(t, time.Minute))
			if err == nil {
				t.Fatal("Fetch trusted a host key known_hosts does not hold")
			}
			if !errors.Is(err, source.ErrHostKey) || !strings.Contains(err.Error(), "host key") {
				t.Errorf("error %q is not a host key error", err)
			}
			if !strings.Contains(err.Error(), url) {
				t.Errorf("error %q does not name %s", err, url)
			}
			t.Logf("%s: %v", name, err)
		})
	}
}

func TestSourcePinnedCommitAndTags(t *testing.T) {
	repo := newGitRepo(t, "src-pin")
	first := repo.Commit("first", map[string]string{"v.yaml": "1\n"})
	run(t, repo.WorkTree, "git", "tag", "-a", "-m", "release 1", "v1", first)
	run(t, repo.WorkTree, "git", "push", "-q", "origin", "v1")
	head := repo.Commit("second", map[string]string{"v.yaml": "2\n"})

	for _, tc := range []struct{ ref, id, resolved string }{
		// An annotated tag resolves to its commit.
		{"v1", first, "refs/tags/v1"},
		// A commit no ref points to: over http it is asked for by hash.
		{first, first, first},
		{head, head, head},
		{"main", head, "refs/heads/main"},
	} {
		for _, url := range []string{repo.HTTPURL, repo.FileURL} {
			s := openSource(t, source.Options{URL: url, Ref: tc.ref, CacheDir: t.TempDir()})
			before := gitStats(t, repo.Name)
			a, _ := fetch(t, s)
			if d := gitStats(t, repo.Name).UploadPacks - before.UploadPacks; url == repo.HTTPURL && d != 1 {
				t.Errorf("%s Ref %s: %d upload-packs, want 1 (no fallback to a full fetch)", url, tc.ref, d)
			}
			if a.Revision.ID != tc.id || a.Revision.Ref != tc.resolved {
				t.Errorf("%s Ref %s: %s from %s, want %s from %s", url, tc.ref, a.Revision.ID, a.Revision.Ref, tc.id, tc.resolved)
			}
			want := map[string]string{first: "1\n", head: "2\n"}[tc.id]
			if b, err := fs.ReadFile(a.FS, "v.yaml"); err != nil || string(b) != want {
				t.Errorf("%s Ref %s: v.yaml = %q, %v; want %q", url, tc.ref, b, err, want)
			}
		}
	}

	// Once cached, a pinned commit costs the server nothing.
	s := openSource(t, source.Options{URL: repo.HTTPURL, Ref: first, CacheDir: t.TempDir()})
	fetch(t, s)
	before := gitStats(t, repo.Name)
	if _, changed := fetch(t, s); changed {
		t.Error("pinned commit, second Fetch: changed=true")
	}
	if d := gitStats(t, repo.Name).Requests - before.Requests; d != 0 {
		t.Errorf("pinned commit, second Fetch: %d requests, want 0", d)
	}
}

package source

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestParseURL(t *testing.T) {
	cwd, _ := os.Getwd()
	for _, tc := range []struct {
		in       string
		kind     kind
		redacted string
		endpoint string // go-git's view, "" to skip
		user     string
		password string
		path     string
	}{
		{in: "https://git.example.com/ops/hosts.git", kind: kindHTTP, redacted: "https://git.example.com/ops/hosts.git", endpoint: "https://git.example.com/ops/hosts.git"},
		{in: "HTTPS://git.example.com:8443/ops/hosts", kind: kindHTTP, redacted: "https://git.example.com:8443/ops/hosts", endpoint: "https://git.example.com:8443/ops/hosts"},
		{in: "http://127.0.0.1:8418/x.git", kind: kindHTTP, redacted: "http://127.0.0.1:8418/x.git", endpoint: "http://127.0.0.1:8418/x.git"},
		{in: "https://user:s3cret@git.example.com/x.git", kind: kindHTTP, redacted: "https://git.example.com/x.git", endpoint: "https://git.example.com/x.git", user: "user", password: "s3cret"},
		{in: "https://ghp_tokenonly@github.com/o/r", kind: kindHTTP, redacted: "https://github.com/o/r", user: "ghp_tokenonly"},
		{in: "http://[::1]:8418/x.git", kind: kindHTTP, redacted: "http://[::1]:8418/x.git", endpoint: "http://[::1]:8418/x.git"},
		{in: "ssh://git@example.com/ops/hosts.git", kind: kindSSH, redacted: "ssh://git@example.com/ops/hosts.git", endpoint: "ssh://git@example.com/ops/hosts.git"},
		{in: "ssh://root@127.0.0.1:2222/var/lib/x.git", kind: kindSSH, redacted: "ssh://root@127.0.0.1:2222/var/lib/x.git", endpoint: "ssh://root@127.0.0.1:2222/var/lib/x.git"},
		{in: "git+ssh://example.com/x.git", kind: kindSSH, redacted: "ssh://example.com/x.git"},
		{in: "git@github.com:org/repo.git", kind: kindSSH, redacted: "git@github.com:org/repo.git", endpoint: "ssh://git@github.com/org/repo.git"},
		{in: "github.com:org/repo.git", kind: kindSSH, redacted: "github.com:org/repo.git"},
		{in: "git@[::1]:repo.git", kind: kindSSH, redacted: "git@[::1]:repo.git"},
		{in: "host:repo@v2.git", kind: kindSSH, redacted: "host:repo@v2.git"},
		{in: "file:///var/lib/git/x.git", kind: kindFile, redacted: "file:///var/lib/git/x.git", path: "/var/lib/git/x.git"},
		{in: "file://localhost/srv/x/../y.git", kind: kindFile, redacted: "file:///srv/y.git", path: "/srv/y.git"},
		{in: "/etc/reconciler/desired", kind: kindDir, redacted: "/etc/reconciler/desired", path: "/etc/reconciler/desired"},
		{in: "./desired", kind: kindDir, redacted: filepath.Join(cwd, "desired"), path: filepath.Join(cwd, "desired")},
		{in: "desired/a:b", kind: kindDir, redacted: filepath.Join(cwd, "desired/a:b")},
	} {
		loc, err := parseURL(tc.in)
		if err != nil {
			t.Errorf("parseURL(%q): %v", tc.in, err)
			continue
		}
		if loc.kind != tc.kind || loc.redacted != tc.redacted {
			t.Errorf("parseURL(%q) = %s %q, want %s %q", tc.in, loc.kind, loc.redacted, tc.kind, tc.redacted)
		}
		if tc.endpoint != "" && loc.endpoint.String() != tc.endpoint {
			t.Errorf("parseURL(%q) endpoint %q, want %q", tc.in, loc.endpoint.String(), tc.endpoint)
		}
		if loc.user != tc.user || loc.password != tc.password {
			t.Errorf("parseURL(%q) credentials %q:%q, want %q:%q", tc.in, loc.user, loc.password, tc.user, tc.password)
		}
		if tc.path != "" && loc.path != tc.path {
			t.Errorf("parseURL(%q) path %q, want %q", tc.in, loc.path, tc.path)
		}
	}
}

func TestParseURLRejects(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"", "empty"},
		{"   ", "empty"},
		{"https://", "no host"},
		{"https:///x.git", "no host"},
		{"https://host", "no repository path"},
		{"https://host/", "no repository path"},
		{"https://host/x?ref=main", "query"},
		{"https://host/x#frag", "fragment"},
		{"https://host:99999/x", "port"},
		{"https://u:p@host:bad/x", "invalid port"},
		{"ftp://host/x", `scheme "ftp" is not supported`},
		{"git://host/x", `scheme "git" is not supported`},
		{"ssh://host", "no repository path"},
		{"ssh://git:pw@host/x", "ssh passwords are not supported"},
		{"ssh://@/x", "no host"},
		{"file://remote/x.git", "only this machine"},
		{"file://", "absolute path"},
		{":path", "no host"},
		{"@host:path", "empty user"},
		{"host:", "no repository path"},
		{"git@ho st:x", "not valid"},
		{"user:secret@host:path", "ssh passwords are not supported"},
		{"https://ho\nst/x", "control character"},
		{" https://h/x", "white space"},
		{"https://h/x\n", "white space"},
		{"https://host/\x00x", "control character"},
	} {
		_, err := parseURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("parseURL(%q) = %v, want an error with %q", tc.in, err, tc.msg)
		}
		if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), ":pw@")) {
			t.Errorf("parseURL(%q) error leaks a password: %v", tc.in, err)
		}
	}
}

func TestStringStripsCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:s3cret@git.example.com/x.git": "https://git.example.com/x.git",
		"http://tok@127.0.0.1:8418/x.git":           "http://127.0.0.1:8418/x.git",
		"https://git.example.com/x.git":             "https://git.example.com/x.git",
	} {
		s, err := Open(Options{URL: in, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if s.String() != want {
			t.Errorf("String() of %q = %q, want %q", in, s.String(), want)
		}
	}
}

func TestCacheKey(t *testing.T) {
	a := cacheKey("https://h/x.git", "main")
	if len(a) != 64 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("cacheKey = %q, want 64 hex", a)
	}
	if a != cacheKey("https://h/x.git", "main") {
		t.Error("cacheKey is not stable")
	}
	for _, other := range [][2]string{{"https://h/x.git", "dev"}, {"https://h/y.git", "main"}, {"https://h/x.git", ""}, {"https://h/x.gitmain", ""}} {
		if cacheKey(other[0], other[1]) == a {
			t.Errorf("cacheKey(%q, %q) collides with main", other[0], other[1])
		}
	}
	// Credentials are not part of the key: rotating a token keeps the cache.
	cache := t.TempDir()
	s1 := mustOpen(t, Options{URL: "https://u:one@h/x.git", CacheDir: cache}).(*gitSource)
	s2 := mustOpen(t, Options{URL: "https://u:two@h/x.git", CacheDir: cache}).(*gitSource)
	if s1.cache.dir != s2.cache.dir {
		t.Errorf("cache folders differ by password: %s vs %s", s1.cache.dir, s2.cache.dir)
	}
}

// writeKeys writes an unencrypted ssh private key and a known_hosts file.
func writeKeys(t *testing.T) (keyFile, knownHosts string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile = filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(priv.Public())
	knownHosts = filepath.Join(dir, "known_hosts")
	line := "[127.0.0.1]:2222 " + string(ssh.MarshalAuthorizedKey(pub))
	if err := os.WriteFile(knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, knownHosts
}

func TestOpenValidates(t *testing.T) {
	key, kh := writeKeys(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("abc\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	basic := filepath.Join(dir, "basic")
	os.WriteFile(basic, []byte("nocolon\n"), 0o600)
	aFile := filepath.Join(dir, "file")
	os.WriteFile(aFile, []byte("x"), 0o600)
	garbageKey := filepath.Join(dir, "badkey")
	os.WriteFile(garbageKey, []byte("not a key"), 0o600)
	const sshURL = "ssh://git@127.0.0.1:2222/x.git"
	cache := t.TempDir()

	for _, tc := range []struct {
		name string
		o    Options
		msg  string
	}{
		{"bad URL", Options{URL: "ftp://h/x"}, "not supported"},
		{"ssh without known_hosts", Options{URL: sshURL, SSHKeyFile: key}, "KnownHostsFile"},
		{"scp-like without known_hosts", Options{URL: "git@h:x.git", SSHKeyFile: key}, "never trusted on first use"},
		{"ssh without key", Options{URL: sshURL, KnownHostsFile: kh}, "SSHKeyFile"},
		{"ssh with a missing known_hosts", Options{URL: sshURL, SSHKeyFile: key, KnownHostsFile: filepath.Join(dir, "nope")}, "KnownHostsFile"},
		{"ssh with a bad key", Options{URL: sshURL, SSHKeyFile: garbageKey, KnownHostsFile: kh}, "SSHKeyFile"},
		{"token for ssh", Options{URL: sshURL, SSHKeyFile: key, KnownHostsFile: kh, TokenFile: tok}, "https:// and http:// sources only"},
		{"ssh key for https", Options{URL: "https://h/x", SSHKeyFile: key}, "ssh sources only"},
		{"token and basic", Options{URL: "https://h/x", TokenFile: tok, BasicAuthFile: basic}, "not both"},
		{"empty token", Options{URL: "https://h/x", TokenFile: empty}, "empty"},
		{"missing token", Options{URL: "https://h/x", TokenFile: filepath.Join(dir, "nope")}, "no such file"},
		{"basic without colon", Options{URL: "https://h/x", BasicAuthFile: basic}, "user:password"},
		{"negative timeout", Options{URL: "https://h/x", Timeout: -time.Second}, "negative timeout"},
		{"path leaves the repo", Options{URL: "https://h/x", Path: "../etc"}, "leaves the repository"},
		{"absolute path", Options{URL: "https://h/x", Path: "/etc"}, "relative"},
		{"bad ref", Options{URL: "https://h/x", Ref: "main..dev"}, "not a valid git ref"},
		{"ref with space", Options{URL: "https://h/x", Ref: "ma in"}, "not a valid git ref"},
		{"missing folder", Options{URL: filepath.Join(dir, "nope")}, "no such file"},
		{"folder is a file", Options{URL: aFile}, "not a folder"},
		{"folder with a ref", Options{URL: dir, Ref: "main"}, "no refs"},
	} {
		tc.o.CacheDir = cache
		_, err := Open(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: Open = %v, want an error with %q", tc.name, err, tc.msg)
		}
	}

	// And what is fine.
	for _, o := range []Options{
		{URL: sshURL, SSHKeyFile: key, KnownHostsFile: kh},
		{URL: "git@github.com:o/r.git", SSHKeyFile: key, KnownHostsFile: kh},
		{URL: "https://h/x", TokenFile: tok, Path: "./hosts/", Ref: "v1.2"},
		{URL: "file:///srv/x.git"},
		{URL: dir, Path: "sub"},
	} {
		o.CacheDir = cache
		if _, err := Open(o); err != nil {
			t.Errorf("Open(%+v): %v", o, err)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{"": ".", ".": ".", "./": ".", "hosts": "hosts", "hosts/": "hosts", "./a/b/../c": "a/c"} {
		if got, err := cleanPath(in); err != nil || got != want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"https://user:pw@host/x.git", "http://h:80/x", "ssh://git@h:22/x", "git@h:x/y.git",
		"h:x", "file:///x", "/abs", "rel/dir", "[::1]:x", "u@[::1]:x", "https://[::1]/x",
		"user:secret@host:path", "ssh://u:p@h/x", "https://%zz/x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		loc, err := parseURL(in)
		if err != nil {
			return
		}
		if loc.kind < kindHTTP || loc.kind > kindDir {
			t.Fatalf("parseURL(%q): kind %d", in, loc.kind)
		}
		if loc.redacted == "" {
			t.Fatalf("parseURL(%q): empty redacted form", in)
		}
		// The redacted form holds no credentials...
		if loc.kind == kindHTTP {
			u, err := url.Parse(loc.redacted)
			if err != nil || u.User != nil {
				t.Fatalf("parseURL(%q): redacted %q keeps userinfo (%v)", in, loc.redacted, err)
			}
		}
		if loc.kind == kindSSH && strings.Contains(loc.redacted, "://") {
			u, err := url.Parse(loc.redacted)
			if err != nil {
				t.Fatalf("parseURL(%q): redacted %q does not parse: %v", in, loc.redacted, err)
			}
			if _, has := u.User.Password(); has {
				t.Fatalf("parseURL(%q): redacted %q keeps a password", in, loc.redacted)
			}
		}
		// ... and parses again to the same place.
		again, err := parseURL(loc.redacted)
		if err != nil {
			t.Fatalf("parseURL(%q) gave %q, which does not parse: %v", in, loc.redacted, err)
		}
		if again.kind != loc.kind || again.redacted != loc.redacted {
			t.Fatalf("parseURL(%q) = %s %q, but that parses as %s %q", in, loc.kind, loc.redacted, again.kind, again.redacted)
		}
		if (loc.kind == kindHTTP || loc.kind == kindSSH) && loc.endpoint == nil {
			t.Fatalf("parseURL(%q): no endpoint", in)
		}
		if loc.kind == kindHTTP && loc.endpoint.String() != again.endpoint.String() {
			t.Fatalf("parseURL(%q): endpoint %q vs %q", in, loc.endpoint, again.endpoint)
		}
	})
}

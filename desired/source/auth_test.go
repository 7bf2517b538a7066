package source

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestHTTPAuth(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("t0ken\n"), 0o600)
	basic := filepath.Join(dir, "basic")
	os.WriteFile(basic, []byte("deploy:pa:ss\r\n"), 0o600)
	inURL, _ := parseURL("https://u:pw-secret@h/x")
	plain, _ := parseURL("https://h/x")

	for _, tc := range []struct {
		name     string
		loc      location
		o        Options
		user, pw string
	}{
		{"token file", plain, Options{TokenFile: tok}, "git", "t0ken"},
		{"basic auth file", plain, Options{BasicAuthFile: basic}, "deploy", "pa:ss"},
		{"URL userinfo", inURL, Options{}, "u", "pw-secret"},
		{"a file wins over the URL", inURL, Options{TokenFile: tok}, "git", "t0ken"},
	} {
		a, err := httpAuth(tc.loc, tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, ok := a.(*githttp.BasicAuth)
		if !ok || b.Username != tc.user || b.Password != tc.pw {
			t.Errorf("%s: auth %#v, want %s:%s", tc.name, a, tc.user, tc.pw)
		}
		if strings.Contains(a.String(), tc.pw) {
			t.Errorf("%s: auth String() shows the password: %s", tc.name, a)
		}
	}
	if a, err := httpAuth(plain, Options{}); a != nil || err != nil {
		t.Errorf("no credentials: %v, %v", a, err)
	}
	// Read on every call: a rotated token is used at once.
	os.WriteFile(tok, []byte("rotated\n"), 0o600)
	if a, _ := httpAuth(plain, Options{TokenFile: tok}); a.(*githttp.BasicAuth).Password != "rotated" {
		t.Error("rotated token not picked up")
	}
}

func TestSSHHostKeyChecks(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	serverKey, _ := ssh.NewPublicKey(edPub)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, _ := ssh.NewPublicKey(otherPub)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecKey, _ := ssh.NewPublicKey(&ec.PublicKey)

	key, _ := writeKeys(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	lines := knownhosts.Line([]string{"[git.example.com]:2222"}, serverKey) + "\n" +
		knownhosts.Line([]string{"[git.example.com]:2222"}, ecKey) + "\n" +
		knownhosts.Line([]string{"other.example.com"}, otherKey) + "\n"
	if err := os.WriteFile(kh, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := &sshAuth{user: "git", hostPort: "git.example.com:2222", keyFile: key, knownHostsFile: kh}
	cfg, err := auth.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "git" || len(cfg.Auth) != 1 {
		t.Errorf("config user %q, %d auth methods", cfg.User, len(cfg.Auth))
	}
	// Only the key types known_hosts holds for this host are negotiated.
	if want := []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256}; !slices.Equal(cfg.HostKeyAlgorithms, want) {
		t.Errorf("HostKeyAlgorithms = %v, want %v", cfg.HostKeyAlgorithms, want)
	}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 2222}
	if err := cfg.HostKeyCallback("git.example.com:2222", remote, serverKey); err != nil {
		t.Errorf("the known key was refused: %v", err)
	}
	for name, tc := range map[string]struct {
		host string
		key  ssh.PublicKey
		msg  string
	}{
		"mismatch": {"git.example.com:2222", otherKey, "does not match"},
		"unknown":  {"new.example.com:22", serverKey, "is not in"},
	} {
		err := cfg.HostKeyCallback(tc.host, remote, tc.key)
		if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want ErrHostKey saying %q", name, err, tc.msg)
		}
	}
	// RSA known: all of its signature algorithms are offered.
	if got := knownAlgorithms(func(string, net.Addr, ssh.PublicKey) error {
		return &knownhosts.KeyError{Want: []knownhosts.KnownKey{{Key: rsaKey(t)}}}
	}, "h:22"); !slices.Equal(got, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}) {
		t.Errorf("rsa algorithms = %v", got)
	}
}

func rsaKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

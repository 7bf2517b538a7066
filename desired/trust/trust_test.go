package trust

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"

	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/internal/filetree"
)

func TestSSHSignaturesOfSSHKeygen(t *testing.T) {
	need(t, "ssh-keygen")
	dir := t.TempDir()
	msgFile := filepath.Join(dir, "msg")
	msg := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nsigned\n")
	if err := os.WriteFile(msgFile, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"ed25519", "rsa", "ecdsa"} {
		t.Run(typ, func(t *testing.T) {
			key, pub := sshKeygen(t, typ, "op-"+typ)
			os.Remove(msgFile + ".sig")
			sh(t, dir, nil, "ssh-keygen", "-q", "-Y", "sign", "-n", "git", "-f", key, msgFile)
			armored, err := os.ReadFile(msgFile + ".sig")
			if err != nil {
				t.Fatal(err)
			}
			sig, err := ParseSSHSignature(armored)
			if err != nil {
				t.Fatalf("ParseSSHSignature: %v", err)
			}
			want, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(pub))
			if !bytes.Equal(sig.PublicKey.Marshal(), want.Marshal()) || sig.Namespace != "git" {
				t.Errorf("key %s namespace %q, want %s and git", ssh.FingerprintSHA256(sig.PublicKey), sig.Namespace, ssh.FingerprintSHA256(want))
			}
			if err := sig.Verify(msg, "git"); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := sig.Verify(append(msg, '!'), "git"); err == nil {
				t.Error("a changed message verified")
			}
			if err := sig.Verify(msg, "file"); err == nil {
				t.Error("another namespace verified")
			}
		})
	}

	// And ssh-keygen accepts what signSSH makes: the format is the same.
	s := newEd25519(t)
	sigFile := filepath.Join(dir, "go.sig")
	if err := os.WriteFile(sigFile, signSSH(t, s, msg, "git"), 0o644); err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(dir, "allowed")
	os.WriteFile(allowed, []byte("op@example.com "+authorizedLine(s.PublicKey())+"\n"), 0o644)
	// ssh-keygen -Y verify reads the message on stdin.
	out, err := runStdin(msg, "ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "op@example.com", "-n", "git", "-s", sigFile)
	if err != nil {
		t.Errorf("ssh-keygen -Y verify of a Go-made signature: %v\n%s", err, out)
	}
}

func TestParseSSHSignatureRejects(t *testing.T) {
	s := newEd25519(t)
	good := signSSH(t, s, []byte("m"), "git")
	blob := func(mut func([]byte) []byte) []byte {
		text := strings.TrimSpace(string(good))
		text = strings.TrimSuffix(strings.TrimPrefix(text, sshsigBegin), sshsigEnd)
		raw, err := decodeB64(text)
		if err != nil {
			t.Fatal(err)
		}
		return armorSSH(mut(raw))
	}
	cases := map[string][]byte{
		"empty":          nil,
		"pgp armor":      []byte("-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"),
		"no end":         []byte(sshsigBegin + "\nU1NIU0lH\n"),
		"bad base64":     []byte(sshsigBegin + "\n!!!!\n" + sshsigEnd),
		"bad magic":      blob(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version 2":      blob(func(b []byte) []byte { b[9] = 2; return b }),
		"truncated":      blob(func(b []byte) []byte { return b[:len(b)-5] }),
		"trailing bytes": blob(func(b []byte) []byte { return append(b, 0, 0, 0, 0) }),
		"huge":           bytes.Repeat([]byte("A"), maxSSHSig+1),
	}
	for name, in := range cases {
		if _, err := ParseSSHSignature(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseSSHSignature(good); err != nil {
		t.Errorf("the good one: %v", err)
	}
}

func TestAllowedSigners(t *testing.T) {
	k1, k2 := newEd25519(t).PublicKey(), newEd25519(t).PublicKey()
	l1, l2 := authorizedLine(k1), authorizedLine(k2)
	file := strings.Join([]string{
		"# operators",
		"",
		"alice@example.com " + l1 + " alice's laptop",
		`"bob smith,carol@example.com" namespaces="git,file",valid-after="20240101",valid-before="20990101120000Z" ` + l2,
		"  *@example.com   cert-authority-not namespaces=\"git\" " + l1,
	}, "\n")
	_, err := ParseAllowedSigners([]byte(file))
	if err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("a bad option on line 5: err = %v", err)
	}
	file = strings.Join(strings.Split(file, "\n")[:4], "\n") + "\n"
	got, err := ParseAllowedSigners([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Principals != "alice@example.com" || got[0].Line != 3 ||
		got[1].Principals != "bob smith,carol@example.com" || got[1].Namespaces != "git,file" ||
		got[1].ValidAfter.IsZero() || !got[1].ValidBefore.Equal(time.Date(2099, 1, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("parsed %+v", got)
	}
	if !bytes.Equal(got[1].Key.Marshal(), k2.Marshal()) {
		t.Error("the second key is not k2")
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if ok, why := got[1].allows("git", now); !ok {
		t.Errorf("bob in 2026: %s", why)
	}
	if ok, _ := got[1].allows("git", time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
		t.Error("bob before valid-after allowed")
	}
	if ok, _ := got[1].allows("ssh", now); ok {
		t.Error("namespace ssh allowed by namespaces=git,file")
	}

	bad := map[string]string{
		"key only":         l1,
		"no key":           "alice@example.com",
		"garbage key":      "alice@example.com ssh-ed25519 AAAA!!!",
		"cert-authority":   "alice@example.com cert-authority " + l1,
		"unknown option":   `alice@example.com no-touch-required ` + l1,
		"unquoted value":   `alice@example.com namespaces=git ` + l1,
		"bad time":         `alice@example.com valid-after="2024-01-01" ` + l1,
		"empty namespaces": `alice@example.com namespaces="" ` + l1,
		"option twice":     `alice@example.com namespaces="git",namespaces="file" ` + l1,
		"unterminated":     `"alice ` + l1,
		"quote then text":  `"alice"x ` + l1,
		"a very long line": "alice@example.com " + strings.Repeat("A", maxAllowedSignersLine),
	}
	for name, line := range bad {
		if _, err := ParseAllowedSigners([]byte(line)); err == nil {
			t.Errorf("%s: accepted %q", name, line)
		}
	}
}

func TestMatchPatternList(t *testing.T) {
	for _, c := range []struct {
		s, list string
		want    bool
	}{
		{"git", "git", true},
		{"git", "file,git", true},
		{"git", "g*", true},
		{"git", "g?t", true},
		{"git", "file", false},
		{"git", "*,!git", false},
		{"git", "!git,*", false},
		{"git", "", false},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*a*a*a*a*a*a*a*c", false},
	} {
		if got := matchPatternList(c.s, c.list); got != c.want {
			t.Errorf("matchPatternList(%q, %q) = %v", c.s, c.list, got)
		}
	}
}

// gitRepo is a work repository made with the git binary, so signatures
// are git's own.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T) *gitRepo {
	need(t, "git", "ssh-keygen")
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.name", "Op Erator")
	r.git("config", "user.email", "op@example.com")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	return sh(r.t, r.dir, []string{"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}, "git", args...)
}

// commit commits a change to a.yaml, signed with the SSH key file when
// one is given.
func (r *gitRepo) commit(msg, sshKey string) string {
	r.t.Helper()
	os.WriteFile(filepath.Join(r.dir, "a.yaml"), []byte(msg+"\n"), 0o644)
	r.git("add", "-A")
	args := []string{"commit", "-q", "-m", msg}
	if sshKey != "" {
		args = append([]string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + sshKey}, append(args, "-S")...)
	}
	r.git(args...)
	return r.git("rev-parse", "HEAD")
}

type fetcher struct {
	t   *testing.T
	src source.Source
}

func (f fetcher) fetch() source.Revision {
	f.t.Helper()
	a, _, err := f.src.Fetch(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return a.Revision
}

func refusal(t *testing.T, err error, reason, commit string) *Refusal {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("err = %v, want a refusal (%s of %s)", err, reason, commit)
	}
	if r.Reason != reason || r.Commit != commit {
		t.Errorf("refusal %s of %s (%s), want %s of %s", r.Reason, source.Short(r.Commit), r.Detail, reason, source.Short(commit))
	}
	return r
}

func TestCheckSSHSignedCommits(t *testing.T) {
	r := newGitRepo(t)
	keyA, pubA := sshKeygen(t, "ed25519", "alice")
	keyB, pubB := sshKeygen(t, "ed25519", "mallory")
	pa, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(pubA))
	pb, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(pubB))
	allowed := filepath.Join(t.TempDir(), "allowed_signers")
	os.WriteFile(allowed, []byte("alice@example.com namespaces=\"git\" "+pubA+"\n"), 0o644)

	src, err := source.Open(source.Options{URL: "file://" + r.dir, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f := fetcher{t, src}
	head := &Policy{Mode: ModeHead, AllowedSignersFile: allowed}
	strict := &Policy{Mode: ModeStrict, AllowedSignersFile: allowed}
	if err := head.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	c1 := r.commit("one", keyA)
	rev := f.fetch()
	v, err := strict.Check(ctx, src, "", rev)
	if err != nil || len(v.Signers) != 1 || !strings.Contains(v.Signers[0].Key, ssh.FingerprintSHA256(pa)) || !strings.Contains(v.Signers[0].Key, "alice@example.com") {
		t.Fatalf("signed by alice, no base: %+v %v", v, err)
	}

	c2 := r.commit("two, unsigned", "")
	_, err = head.Check(ctx, src, c1, f.fetch())
	refusal(t, err, ReasonUnsigned, c2)

	c3 := r.commit("three, signed on top of the unsigned two", keyA)
	rev = f.fetch()
	if v, err := head.Check(ctx, src, c1, rev); err != nil || !v.Descends {
		t.Errorf("head mode, signed head on an unsigned parent: %+v %v", v, err)
	}
	ref := refusal(t, func() error { _, err := strict.Check(ctx, src, c1, rev); return err }(), ReasonUnsigned, c2)
	if !strings.Contains(ref.Detail, "between") {
		t.Errorf("strict refusal does not say the commit is in between: %s", ref.Detail)
	}

	c4 := r.commit("four, mallory", keyB)
	ref = refusal(t, func() error { _, err := head.Check(ctx, src, c3, f.fetch()); return err }(), ReasonUntrustedKey, c4)
	if ref.Key == "" || !strings.Contains(ref.Key, ssh.FingerprintSHA256(pb)) || !strings.Contains(ref.Detail, ssh.FingerprintSHA256(pb)) {
		t.Errorf("refusal does not name mallory's key %s: %+v", ssh.FingerprintSHA256(pb), ref)
	}

	// Alice's key, but not for git, or expired.
	for name, line := range map[string]string{
		"namespace": `alice@example.com namespaces="file" ` + pubA,
		"expired":   `alice@example.com valid-before="20200101" ` + pubA,
		"not yet":   `alice@example.com valid-after="20990101" ` + pubA,
	} {
		p := filepath.Join(t.TempDir(), "allowed")
		os.WriteFile(p, []byte(line+"\n"), 0o644)
		_, err := (&Policy{Mode: ModeHead, AllowedSignersFile: p}).Check(ctx, src, "", rev)
		if r := refusal(t, err, ReasonUntrustedKey, c3); !strings.Contains(r.Detail, "does not allow") {
			t.Errorf("%s: %s", name, r.Detail)
		}
	}

	// A signature that does not cover the commit: alice's signature moved
	// onto a changed commit.
	h, err := src.(source.Historian).History(ctx, source.HistoryRequest{Head: c3})
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(h.Head.Raw, []byte("three, signed"), []byte("three, forged"), 1)
	fc := source.Commit{ID: plumbing.ComputeHash(plumbing.CommitObject, forged).String(), Raw: forged}
	_, err = head.VerifyCommit(fc)
	refusal(t, err, ReasonBadSignature, fc.ID)

	// Anti-rollback: main force-pushed back to one, then a new signed
	// commit on it.
	r.git("reset", "-q", "--hard", c1)
	c5 := r.commit("five, rewritten history", keyA)
	rev = f.fetch()
	ref = refusal(t, func() error { _, err := head.Check(ctx, src, c4, rev); return err }(), ReasonNotDescendant, c5)
	if !strings.Contains(ref.Detail, "does not descend from the applied revision "+c4[:12]) {
		t.Errorf("detail: %s", ref.Detail)
	}
	if _, err := (&Policy{Mode: ModeOff}).Check(ctx, src, c4, rev); !IsRefusal(err) {
		t.Errorf("anti-rollback without signatures: %v", err)
	}
	if _, err := (&Policy{Mode: ModeHead, AllowedSignersFile: allowed, AllowHistoryRewrite: true}).Check(ctx, src, c4, rev); err != nil {
		t.Errorf("--allow-history-rewrite: %v", err)
	}
	// Back to the old one itself: an ancestor.
	r.git("reset", "-q", "--hard", c1)
	rev = f.fetch()
	ref = refusal(t, func() error { _, err := head.Check(ctx, src, c5, rev); return err }(), ReasonNotDescendant, c1)
	if !strings.Contains(ref.Detail, "older commit") {
		t.Errorf("detail: %s", ref.Detail)
	}
}

func TestCheckOpenPGPSignedCommits(t *testing.T) {
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	op, err := openpgp.NewEntity("Op Erator", "", "op@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := openpgp.NewEntity("Mallory", "", "mallory@example.com", nil)
	wt, _ := repo.Worktree()
	n := 0
	commit := func(msg string, key *openpgp.Entity) string {
		n++
		os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(msg), 0o644)
		wt.Add("a.yaml")
		h, err := wt.Commit(msg, &git.CommitOptions{SignKey: key,
			Author: &object.Signature{Name: "Op", Email: "op@example.com", When: time.Now().Add(time.Duration(n) * time.Second)}})
		if err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	// The keyring holds two armored blocks: the other key, then ours.
	var ring bytes.Buffer
	for _, e := range []*openpgp.Entity{other, op} {
		w, _ := armor.Encode(&ring, openpgp.PublicKeyType, nil)
		e.Serialize(w)
		w.Close()
		ring.WriteString("\n")
	}
	keyring := filepath.Join(t.TempDir(), "keyring.asc")
	os.WriteFile(keyring, ring.Bytes(), 0o644)
	var ours bytes.Buffer
	w, _ := armor.Encode(&ours, openpgp.PublicKeyType, nil)
	op.Serialize(w)
	w.Close()
	onlyOurs := filepath.Join(t.TempDir(), "ours.asc")
	os.WriteFile(onlyOurs, ours.Bytes(), 0o644)

	src, err := source.Open(source.Options{URL: "file://" + dir, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f := fetcher{t, src}
	ctx := context.Background()
	p := &Policy{Mode: ModeStrict, GPGKeyringFile: keyring}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}

	c1 := commit("one", op)
	v, err := p.Check(ctx, src, "", f.fetch())
	if err != nil || len(v.Signers) != 1 || !strings.Contains(v.Signers[0].Key, "Op Erator") {
		t.Fatalf("signed by op: %+v %v", v, err)
	}
	c2 := commit("two", other)
	rev := f.fetch()
	if _, err := p.Check(ctx, src, c1, rev); err != nil {
		t.Errorf("both keys in the ring: %v", err)
	}
	ref := refusal(t, func() error {
		_, err := (&Policy{Mode: ModeHead, GPGKeyringFile: onlyOurs}).Check(ctx, src, c1, rev)
		return err
	}(), ReasonUntrustedKey, c2)
	wantID := strings.ToUpper(other.PrimaryKey.KeyIdString())
	if !strings.Contains(ref.Key, wantID) {
		t.Errorf("refusal key %q does not name mallory's key %s", ref.Key, wantID)
	}
	c3 := commit("three, unsigned", nil)
	refusal(t, func() error { _, err := p.Check(ctx, src, c2, f.fetch()); return err }(), ReasonUnsigned, c3)
	// SSH allowed signers only: an OpenPGP signature has no key to check.
	c4 := commit("four", op)
	signers := filepath.Join(t.TempDir(), "allowed")
	os.WriteFile(signers, []byte("op "+authorizedLine(newEd25519(t).PublicKey())+"\n"), 0o644)
	refusal(t, func() error {
		_, err := (&Policy{Mode: ModeHead, AllowedSignersFile: signers}).Check(ctx, src, c3, f.fetch())
		return err
	}(), ReasonUntrustedKey, c4)
}

func TestPolicyValidate(t *testing.T) {
	dir := t.TempDir()
	if err := filetree.Write(dir, map[string]string{
		"empty":   "# nobody\n",
		"garbage": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnope\n-----END PGP PUBLIC KEY BLOCK-----\n",
	}); err != nil {
		t.Fatal(err)
	}
	empty, garbage := filepath.Join(dir, "empty"), filepath.Join(dir, "garbage")
	for name, p := range map[string]*Policy{
		"bad mode":         {Mode: "always"},
		"no key files":     {Mode: ModeHead},
		"no such file":     {Mode: ModeHead, AllowedSignersFile: filepath.Join(dir, "nope")},
		"no signer listed": {Mode: ModeStrict, AllowedSignersFile: empty},
		"garbage keyring":  {Mode: ModeHead, GPGKeyringFile: garbage},
		"a folder":         {Mode: ModeHead, GPGKeyringFile: dir},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
	if err := (&Policy{Mode: ModeOff}).Validate(); err != nil {
		t.Error(err)
	}
	// A plain folder has no history and no signatures.
	src, err := source.Open(source.Options{URL: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Policy{Mode: ModeOff}).Check(context.Background(), src, "", source.Revision{ID: "local:abc"}); err != nil {
		t.Errorf("folder, off: %v", err)
	}
	if _, err := (&Policy{Mode: ModeHead}).Check(context.Background(), src, "", source.Revision{ID: "local:abc"}); err == nil || IsRefusal(err) {
		t.Errorf("folder, head: %v, want a configuration error", err)
	}
}

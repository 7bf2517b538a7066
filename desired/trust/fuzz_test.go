package trust

import (
	"bytes"
	"crypto/ed25519"
	mathrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/crypto/ssh"

	"reconciler.dev/reconciler/desired/source"
)

// The parsers of untrusted input: SSH signatures (from a commit anyone can
// push), allowed signers files, and whole commit objects through the
// verification path. Run each with
//
//	go test -run '^$' -fuzz '^FuzzX$' -fuzztime 60s ./desired/trust/
//
// The keys are derived from fixed seeds, so every fuzzing worker process
// has the same ones.

func fixedSSHSigner(t testing.TB) ssh.Signer {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fixedPGPEntity(t testing.TB) *openpgp.Entity {
	cfg := &packet.Config{
		Rand:      mathrand.NewChaCha8([32]byte{9}),
		Time:      func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
		Algorithm: packet.PubKeyAlgoEdDSA,
	}
	e, err := openpgp.NewEntity("Op Erator", "", "op@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func FuzzParseSSHSignature(f *testing.F) {
	s := fixedSSHSigner(f)
	good := signSSH(f, s, []byte("message"), "git")
	f.Add(good)
	f.Add(signSSH(f, s, []byte("message"), "file"))
	f.Add(bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")))
	f.Add([]byte(sshsigBegin + "\n" + sshsigEnd))
	f.Add([]byte(sshsigBegin + "\nU1NIU0lHAAAAAQ==\n" + sshsigEnd))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		sig, err := ParseSSHSignature(data)
		if err != nil {
			return
		}
		if sig.PublicKey == nil || sig.Signature == nil {
			t.Fatal("parsed without a key or a signature")
		}
		err = sig.Verify([]byte("message"), "git")
		if err == nil && !bytes.Equal(sig.PublicKey.Marshal(), s.PublicKey().Marshal()) {
			// Only the fixed key ever signed "message".
			t.Fatalf("a signature by %s verified", ssh.FingerprintSHA256(sig.PublicKey))
		}
		_ = sig.Verify(data, "git")
	})
}

func FuzzParseAllowedSigners(f *testing.F) {
	l := authorizedLine(fixedSSHSigner(f).PublicKey())
	f.Add([]byte("alice@example.com " + l + "\n"))
	f.Add([]byte(`"bob smith,*@example.com" namespaces="git,!file",valid-after="20240101",valid-before="20990101120000Z" ` + l + " comment\n# c\n\n"))
	f.Add([]byte("alice cert-authority " + l))
	f.Add([]byte(`alice namespaces="git" ` + strings.Replace(l, "AAAA", "AA!A", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		signers, err := ParseAllowedSigners(data)
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, s := range signers {
			if s.Key == nil || s.Principals == "" || s.Line <= 0 {
				t.Fatalf("incomplete entry %+v (err %v)", s, err)
			}
			s.allows(Namespace, now)
		}
	})
}

// signedCommit is a commit object whose gpgsig header holds sig.
func signedCommit(payloadHeaders, message string, sig []byte) []byte {
	var b strings.Builder
	b.WriteString(payloadHeaders)
	if sig != nil {
		b.WriteString("gpgsig ")
		lines := strings.Split(strings.TrimSuffix(string(sig), "\n"), "\n")
		b.WriteString(strings.Join(lines, "\n "))
		b.WriteString("\n")
	}
	b.WriteString("\n" + message)
	return []byte(b.String())
}

func FuzzVerifyCommit(f *testing.F) {
	s := fixedSSHSigner(f)
	e := fixedPGPEntity(f)
	headers := "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n" +
		"parent 1111111111111111111111111111111111111111\n" +
		"author Op Erator <op@example.com> 1767225600 +0000\n" +
		"committer Op Erator <op@example.com> 1767225600 +0000\n"
	message := "maintenance: true\n"
	payload := []byte(headers + "\n" + message)
	var pgpSig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&pgpSig, e, bytes.NewReader(payload), &packet.Config{Time: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC) }}); err != nil {
		f.Fatal(err)
	}
	kr, err := ParseKeyring(armorKey(f, e))
	if err != nil {
		f.Fatal(err)
	}
	k := &keys{
		ssh: []AllowedSigner{{Line: 1, Principals: "op", Namespaces: "git", Key: s.PublicKey()}},
		pgp: kr,
	}
	sshSigned := signedCommit(headers, message, signSSH(f, s, payload, "git"))
	pgpSigned := signedCommit(headers, message, pgpSig.Bytes())
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, raw := range [][]byte{sshSigned, pgpSigned} {
		id := plumbing.ComputeHash(plumbing.CommitObject, raw).String()
		if _, ref := k.verify(source.Commit{ID: id, Raw: raw}, now); ref != nil {
			f.Fatalf("seed refused: %v", ref)
		}
	}
	f.Add(sshSigned)
	f.Add(pgpSigned)
	f.Add(payload)
	f.Add(signedCommit(headers, message, []byte("-----BEGIN SIGNED MESSAGE-----\nx\n-----END SIGNED MESSAGE-----\n")))
	f.Fuzz(func(t *testing.T, raw []byte) {
		id := plumbing.ComputeHash(plumbing.CommitObject, raw).String()
		signer, ref := k.verify(source.Commit{ID: id, Raw: raw}, now)
		if ref != nil {
			if ref.Reason == "" || ref.Detail == "" || ref.Commit != id {
				t.Fatalf("refusal without reason, detail or commit: %+v", ref)
			}
			return
		}
		// Accepted: what it covers must be what the keys signed.
		c, err := decodeCommit(source.Commit{ID: id, Raw: raw})
		if err != nil {
			t.Fatalf("accepted a commit that does not decode: %v", err)
		}
		o := &plumbing.MemoryObject{}
		if err := c.EncodeWithoutSignature(o); err != nil {
			t.Fatal(err)
		}
		got, _ := readAll(o)
		if !bytes.Equal(got, payload) {
			t.Fatalf("accepted (%s) a commit whose signed content differs:\n%q", signer.Key, got)
		}
	})
}

func armorKey(t testing.TB, e *openpgp.Entity) []byte {
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.Bytes()
}

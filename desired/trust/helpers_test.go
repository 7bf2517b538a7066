package trust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// signSSH makes an armored SSH signature in Go, for tests and fuzz seeds;
// tests that matter also check against ssh-keygen's own signatures.
func signSSH(t testing.TB, signer ssh.Signer, msg []byte, namespace string) []byte {
	t.Helper()
	h := sha512.Sum512(msg)
	toSign := []byte(sshsigMagic)
	toSign = appendSSHString(toSign, []byte(namespace))
	toSign = appendSSHString(toSign, nil)
	toSign = appendSSHString(toSign, []byte("sha512"))
	toSign = appendSSHString(toSign, h[:])
	sig, err := signer.Sign(rand.Reader, toSign)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte(sshsigMagic)
	blob = append(blob, 0, 0, 0, 1)
	blob = appendSSHString(blob, signer.PublicKey().Marshal())
	blob = appendSSHString(blob, []byte(namespace))
	blob = appendSSHString(blob, nil)
	blob = appendSSHString(blob, []byte("sha512"))
	blob = appendSSHString(blob, ssh.Marshal(sig))
	return armorSSH(blob)
}

func armorSSH(blob []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString(blob)
	var sb strings.Builder
	sb.WriteString(sshsigBegin + "\n")
	for len(b64) > 70 {
		sb.WriteString(b64[:70] + "\n")
		b64 = b64[70:]
	}
	sb.WriteString(b64 + "\n" + sshsigEnd + "\n")
	return []byte(sb.String())
}

func newEd25519(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authorizedLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func need(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is not installed: hack/testbed up installs it, and make test runs that first", b)
		}
	}
}

// sh runs a command and returns its trimmed output, failing the test on error.
func sh(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// sshKeygen makes a key pair with ssh-keygen and returns the private key
// file and the public key line.
func sshKeygen(t *testing.T, typ, name string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, name)
	args := []string{"-q", "-t", typ, "-N", "", "-C", name, "-f", key}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	sh(t, "", nil, "ssh-keygen", args...)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return key, strings.TrimSpace(string(pub))
}

func runStdin(stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	return cmd.CombinedOutput()
}

func decodeB64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
}

package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// SSH signatures (what `git commit -S` writes with gpg.format=ssh, and
// `ssh-keygen -Y sign` makes), OpenSSH's PROTOCOL.sshsig:
//
//	-----BEGIN SSH SIGNATURE-----
//	base64 of:
//	  byte[6] "SSHSIG"
//	  uint32  version (1)
//	  string  public key
//	  string  namespace ("git" for commits)
//	  string  reserved
//	  string  hash algorithm ("sha256" or "sha512")
//	  string  signature (an SSH signature blob: format, blob)
//	-----END SSH SIGNATURE-----
//
// The signature covers: "SSHSIG", string namespace, string reserved (empty),
// string hash algorithm, string H(message).

const (
	sshsigBegin   = "-----BEGIN SSH SIGNATURE-----"
	sshsigEnd     = "-----END SSH SIGNATURE-----"
	sshsigMagic   = "SSHSIG"
	sshsigVersion = 1
	// maxSSHSig bounds an armored signature; an RSA 16384-bit one is
	// under 8 KiB.
	maxSSHSig = 64 << 10
)

// SSHSignature is a parsed SSH signature.
type SSHSignature struct {
	PublicKey ssh.PublicKey
	Namespace string
	HashAlg   string // sha256 or sha512
	Signature *ssh.Signature
}

// ParseSSHSignature reads an armored SSH signature. It checks the
// structure only; Verify checks the signature.
func ParseSSHSignature(armored []byte) (*SSHSignature, error) {
	if len(armored) > maxSSHSig {
		return nil, fmt.Errorf("SSH signature: %d bytes, more than %d", len(armored), maxSSHSig)
	}
	text := strings.TrimSpace(strings.ReplaceAll(string(armored), "\r\n", "\n"))
	body, ok := strings.CutPrefix(text, sshsigBegin)
	if !ok {
		return nil, errors.New("SSH signature: no " + sshsigBegin + " line")
	}
	body, ok = strings.CutSuffix(body, sshsigEnd)
	if !ok {
		return nil, errors.New("SSH signature: no " + sshsigEnd + " line at the end")
	}
	b64 := strings.Map(func(r rune) rune {
		if r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, body)
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("SSH signature: bad base64: %w", err)
	}
	return parseSSHSigBlob(blob)
}

func parseSSHSigBlob(blob []byte) (*SSHSignature, error) {
	if !bytes.HasPrefix(blob, []byte(sshsigMagic)) {
		return nil, errors.New("SSH signature: no SSHSIG preamble")
	}
	rest := blob[len(sshsigMagic):]
	if len(rest) < 4 {
		return nil, errors.New("SSH signature: truncated")
	}
	if v := binary.BigEndian.Uint32(rest); v != sshsigVersion {
		return nil, fmt.Errorf("SSH signature: version %d, want %d", v, sshsigVersion)
	}
	rest = rest[4:]
	var fields [5][]byte
	for i := range fields {
		var ok bool
		if fields[i], rest, ok = sshString(rest); !ok {
			return nil, errors.New("SSH signature: truncated")
		}
	}
	if len(rest) != 0 {
		return nil, errors.New("SSH signature: trailing data")
	}
	pub, err := ssh.ParsePublicKey(fields[0])
	if err != nil {
		return nil, fmt.Errorf("SSH signature: public key: %w", err)
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return nil, errors.New("SSH signature: made with a certificate; certificates are not supported")
	}
	hashAlg := string(fields[3])
	if hashAlg != "sha256" && hashAlg != "sha512" {
		return nil, fmt.Errorf("SSH signature: hash algorithm %q, want sha256 or sha512", hashAlg)
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(fields[4], sig); err != nil {
		return nil, fmt.Errorf("SSH signature: signature blob: %w", err)
	}
	return &SSHSignature{PublicKey: pub, Namespace: string(fields[1]), HashAlg: hashAlg, Signature: sig}, nil
}

// sshString reads one SSH "string": uint32 length, then that many bytes.
func sshString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

func appendSSHString(b []byte, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// Verify checks that the signature covers message in namespace.
func (s *SSHSignature) Verify(message []byte, namespace string) error {
	if s.Namespace != namespace {
		return fmt.Errorf("the signature is for namespace %q, not %q", s.Namespace, namespace)
	}
	// As ssh-keygen: RSA signatures must use SHA-2, never ssh-rsa (SHA-1).
	if s.PublicKey.Type() == ssh.KeyAlgoRSA && s.Signature.Format != ssh.KeyAlgoRSASHA256 && s.Signature.Format != ssh.KeyAlgoRSASHA512 {
		return fmt.Errorf("RSA signature algorithm %q is not accepted (want rsa-sha2-256 or rsa-sha2-512)", s.Signature.Format)
	}
	var digest []byte
	switch s.HashAlg {
	case "sha256":
		h := sha256.Sum256(message)
		digest = h[:]
	case "sha512":
		h := sha512.Sum512(message)
		digest = h[:]
	default:
		return fmt.Errorf("hash algorithm %q", s.HashAlg)
	}
	signed := []byte(sshsigMagic)
	signed = appendSSHString(signed, []byte(namespace))
	signed = appendSSHString(signed, nil)
	signed = appendSSHString(signed, []byte(s.HashAlg))
	signed = appendSSHString(signed, digest)
	if err := s.PublicKey.Verify(signed, s.Signature); err != nil {
		return fmt.Errorf("the signature does not verify: %w", err)
	}
	return nil
}

// describeSSHKey names a key the way an operator finds it in
// `ssh-keygen -lf`: its SHA256 fingerprint and type.
func describeSSHKey(k ssh.PublicKey) string {
	return fmt.Sprintf("%s (%s)", ssh.FingerprintSHA256(k), k.Type())
}

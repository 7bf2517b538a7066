package trust

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing/object"
	"reconciler.dev/reconciler/desired/source"
)

// maxKeyring bounds a keyring file: public keys are a few KiB each.
const maxKeyring = 8 << 20

// Keyring is the OpenPGP public keys commits may be signed with.
type Keyring struct {
	Entities openpgp.EntityList
	// armored is every key in one armored block, the form go-git's
	// Commit.Verify takes.
	armored string
}

// ParseKeyring reads armored OpenPGP public keys: one block or several
// concatenated (`gpg --export --armor` of each key, appended).
func ParseKeyring(data []byte) (*Keyring, error) {
	if len(data) > maxKeyring {
		return nil, fmt.Errorf("%d bytes, more than %d", len(data), maxKeyring)
	}
	var kr Keyring
	// armor.Decode reads ahead, so each block is cut out first.
	for i, text := range armoredBlocks(data) {
		block, err := armor.Decode(bytes.NewReader(text))
		if err != nil {
			return nil, fmt.Errorf("armored block %d: %w", i+1, err)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("armored block %d is a %q block: give public keys (%s) only", i+1, block.Type, openpgp.PublicKeyType)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("armored block %d: %w", i+1, err)
		}
		kr.Entities = append(kr.Entities, el...)
	}
	if len(kr.Entities) == 0 {
		return nil, errors.New("no armored OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----) in it")
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	for _, e := range kr.Entities {
		if err := e.Serialize(w); err != nil {
			return nil, fmt.Errorf("key %s: %w", describeEntity(e), err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	kr.armored = buf.String()
	return &kr, nil
}

// verifyOpenPGP checks an OpenPGP-signed commit with go-git's
// Commit.Verify (github.com/ProtonMail/go-crypto underneath). It returns
// the signer's key, or a refusal naming the key the signature claims.
func verifyOpenPGP(c *object.Commit, kr *Keyring) (string, *Refusal) {
	claimed := openPGPIssuer(c.PGPSignature)
	if kr == nil {
		return "", &Refusal{Reason: ReasonUntrustedKey, Commit: c.Hash.String(), Key: claimed,
			Detail: fmt.Sprintf("commit %s is signed with OpenPGP key %s, and no OpenPGP keyring is configured (--gpg-keyring-file)", source.Short(c.Hash.String()), claimed)}
	}
	e, err := c.Verify(kr.armored)
	if err == nil {
		return describeEntity(e), nil
	}
	ref := &Refusal{Reason: ReasonBadSignature, Commit: c.Hash.String(), Key: claimed}
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		ref.Reason = ReasonUntrustedKey
		ref.Detail = fmt.Sprintf("commit %s is signed with OpenPGP key %s, which is not in the keyring", source.Short(c.Hash.String()), claimed)
	case errors.Is(err, pgperrors.ErrKeyExpired), errors.Is(err, pgperrors.ErrKeyRevoked):
		ref.Reason = ReasonUntrustedKey
		ref.Detail = fmt.Sprintf("commit %s is signed with OpenPGP key %s, which is not valid now: %v", source.Short(c.Hash.String()), claimed, err)
	default:
		ref.Detail = fmt.Sprintf("commit %s carries an OpenPGP signature by key %s that does not verify: %v", source.Short(c.Hash.String()), claimed, err)
	}
	return "", ref
}

// openPGPIssuer names the key a signature says made it: its fingerprint
// when the signature carries one, else its 64-bit key id.
func openPGPIssuer(armored string) string {
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return "(unreadable signature)"
	}
	p, err := packet.NewReader(block.Body).Next()
	if err != nil {
		return "(unreadable signature)"
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return "(not a signature packet)"
	}
	switch {
	case len(sig.IssuerFingerprint) > 0:
		return fmt.Sprintf("%X", sig.IssuerFingerprint)
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	return "(no issuer in the signature)"
}

func describeEntity(e *openpgp.Entity) string {
	if e == nil || e.PrimaryKey == nil {
		return "(unknown key)"
	}
	s := fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
	if id := e.PrimaryIdentity(); id != nil {
		s += " (" + id.Name + ")"
	}
	return s
}

// armoredBlocks cuts data into its "-----BEGIN ...-----" to
// "-----END ...-----" blocks; text between them is ignored.
func armoredBlocks(data []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(data, []byte("-----BEGIN "))
		if i < 0 {
			return out
		}
		data = data[i:]
		j := bytes.Index(data, []byte("-----END "))
		if j < 0 {
			return append(out, data) // Decode says what is wrong
		}
		k := bytes.IndexByte(data[j:], '\n')
		if k < 0 {
			return append(out, data)
		}
		out = append(out, data[:j+k+1])
		data = data[j+k+1:]
	}
}

package trust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"reconciler.dev/reconciler/desired/source"
)

// Mode says which commits must carry a valid signature.
type Mode string

const (
	// ModeOff checks no signatures.
	ModeOff Mode = "off"
	// ModeHead: the commit applied must be signed by an allowed key.
	ModeHead Mode = "head"
	// ModeStrict: every commit since the last applied one (git rev-list
	// last..new) must be, the new one included. With no last applied
	// revision (a first start, a one-shot plan or apply) it is ModeHead.
	ModeStrict Mode = "strict"
)

// ParseMode reads --verify-signatures.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", ModeOff:
		return ModeOff, nil
	case ModeHead, ModeStrict:
		return m, nil
	}
	return "", fmt.Errorf("%q: want off, head or strict", s)
}

// Reasons a revision is refused; the reason label of the refusal metrics.
const (
	ReasonUnsigned      = "unsigned"       // no signature at all
	ReasonUntrustedKey  = "untrusted-key"  // signed, by a key not allowed (now, for git)
	ReasonBadSignature  = "bad-signature"  // a signature that does not verify, or one we cannot read
	ReasonNotDescendant = "not-descendant" // does not descend from the applied revision
	ReasonUnverifiable  = "unverifiable"   // strict: the commits since the applied one cannot all be seen
)

// Refusal is a verdict: this revision must not be applied. Retrying does
// not change it; a new commit does.
type Refusal struct {
	Reason string // one of the Reason constants
	Commit string // the commit at fault (under strict, maybe one below the new head)
	Key    string // the signing key when there is one: SSH SHA256 fingerprint, OpenPGP fingerprint or key id
	Detail string // a sentence for people, naming the commit and the key
}

func (r *Refusal) Error() string { return r.Detail }

// IsRefusal reports whether err is a verdict on the revision (as opposed
// to a failure to judge it, such as a git server that did not answer).
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// Policy is what a revision must satisfy before any of its files is even
// parsed: signatures (Mode) and, unless AllowHistoryRewrite, that it
// descends from the last applied revision.
type Policy struct {
	Mode                Mode
	AllowedSignersFile  string // SSH keys, git's gpg.ssh.allowedSignersFile format
	GPGKeyringFile      string // armored OpenPGP public keys
	AllowHistoryRewrite bool
	// MaxDepth bounds how far back history is fetched and walked
	// (default source.DefaultHistoryDepth).
	MaxDepth int
	// Now is the time keys must be valid at (default time.Now).
	Now func() time.Time
}

// Namespace is the SSH signature namespace git signs commits in.
const Namespace = "git"

// Validate checks the policy and that its files parse, so a mistake shows
// at start, not at the first commit.
func (p *Policy) Validate() error {
	if _, err := ParseMode(string(p.Mode)); err != nil {
		return fmt.Errorf("--verify-signatures %w", err)
	}
	if p.Mode == ModeOff || p.Mode == "" {
		return nil
	}
	if p.AllowedSignersFile == "" && p.GPGKeyringFile == "" {
		return fmt.Errorf("--verify-signatures %s needs --allowed-signers-file (SSH) or --gpg-keyring-file (OpenPGP), or both", p.Mode)
	}
	_, err := p.loadKeys()
	return err
}

// keys are the keys of one check, read afresh each time so that a rotated
// file counts at the next commit without a restart.
type keys struct {
	ssh []AllowedSigner
	pgp *Keyring
}

func (p *Policy) loadKeys() (*keys, error) {
	var k keys
	var err error
	if p.AllowedSignersFile != "" {
		if k.ssh, err = loadKeyFile("--allowed-signers-file", p.AllowedSignersFile, ParseAllowedSigners); err != nil {
			return nil, err
		}
		if len(k.ssh) == 0 {
			return nil, fmt.Errorf("--allowed-signers-file %s lists no key", p.AllowedSignersFile)
		}
	}
	if p.GPGKeyringFile != "" {
		if k.pgp, err = loadKeyFile("--gpg-keyring-file", p.GPGKeyringFile, ParseKeyring); err != nil {
			return nil, err
		}
	}
	return &k, nil
}

// loadKeyFile reads the key file that flag names (bounded) and parses it;
// its errors name the flag and the file.
func loadKeyFile[K any](flag, path string, parse func([]byte) (K, error)) (K, error) {
	var zero K
	b, err := readBounded(path, maxKeyring)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", flag, err)
	}
	k, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return k, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path) // a FIFO would block
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, st.Size(), limit)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), err
}

// Verdict is an accepted revision and what was checked.
type Verdict struct {
	// Signers: for each commit checked, head first, the key that signed it.
	Signers []Signer
	// Descends is true when the revision was checked to descend from the
	// applied one (false when there is none, or rewrites are allowed).
	Descends bool
	// Fetches counts the deepening fetches the history needed.
	Fetches int
}

// Signer is a commit and the key whose valid signature it carries.
type Signer struct {
	Commit string
	Key    string // "ssh SHA256:... (ssh-ed25519), principals alice@example.com" or "openpgp FINGERPRINT (name)"
}

// Summary is one line for logs and events.
func (v Verdict) Summary() string {
	var parts []string
	if len(v.Signers) > 0 {
		parts = append(parts, "signed by "+v.Signers[0].Key)
		if len(v.Signers) > 1 {
			parts = append(parts, fmt.Sprintf("%d commits checked", len(v.Signers)))
		}
	}
	if v.Descends {
		parts = append(parts, "descends from the applied revision")
	}
	return strings.Join(parts, "; ")
}

// Check judges head (a revision src just fetched) against base (the last
// applied revision; "" when there is none). It returns a *Refusal when the
// revision must not be applied, another error when it could not be judged
// (git unreachable, a key file unreadable: try again later), and the
// verdict otherwise (with a refusal too, the verdict's Fetches counts the
// history fetched to reach it). Check is bounded by ctx; every fetch it makes also by
// the source's own timeout.
func (p *Policy) Check(ctx context.Context, src source.Source, base string, head source.Revision) (Verdict, error) {
	mode, err := ParseMode(string(p.Mode))
	if err != nil {
		return Verdict{}, err
	}
	hist, isGit := src.(source.Historian)
	if !isGit {
		if mode != ModeOff {
			return Verdict{}, fmt.Errorf("--verify-signatures %s needs a git source; %s is a plain folder", mode, src)
		}
		return Verdict{}, nil // a folder has no history to roll back
	}
	if !source.IsCommitID(base) {
		base = "" // nothing applied yet, or from a plain folder
	}
	wantHistory := base != "" && (!p.AllowHistoryRewrite || mode == ModeStrict)
	if mode == ModeOff && !wantHistory {
		return Verdict{}, nil
	}
	var k *keys
	if mode != ModeOff {
		if k, err = p.loadKeys(); err != nil {
			return Verdict{}, err
		}
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}

	// The head first: an unsigned head needs no history to be refused.
	h, err := hist.History(ctx, source.HistoryRequest{Head: head.ID})
	if err != nil {
		return Verdict{}, err
	}
	var v Verdict
	if mode != ModeOff {
		s, ref := k.verify(h.Head, now)
		if ref != nil {
			return Verdict{}, ref
		}
		v.Signers = append(v.Signers, s)
	}
	if !wantHistory {
		return v, nil
	}

	h, err = hist.History(ctx, source.HistoryRequest{Head: head.ID, Base: base, All: mode == ModeStrict, MaxDepth: p.MaxDepth})
	if err != nil {
		return Verdict{}, err
	}
	v.Fetches = h.Fetches
	depth := p.MaxDepth
	if depth <= 0 {
		depth = source.DefaultHistoryDepth
	}
	if !p.AllowHistoryRewrite && !h.Descends {
		ref := &Refusal{Reason: ReasonNotDescendant, Commit: head.ID}
		switch {
		case h.HeadBeforeBase:
			ref.Detail = fmt.Sprintf("commit %s does not descend from the applied revision %s: it is an older commit of that history (the ref went back); --allow-history-rewrite accepts it", source.Short(head.ID), source.Short(base))
		case h.Known:
			ref.Detail = fmt.Sprintf("commit %s does not descend from the applied revision %s (history rewritten by a force-push, or an old commit replayed); --allow-history-rewrite accepts it", source.Short(head.ID), source.Short(base))
		default:
			ref.Detail = fmt.Sprintf("commit %s does not descend from the applied revision %s within its newest %d commits; --allow-history-rewrite accepts it", source.Short(head.ID), source.Short(base), depth)
		}
		return Verdict{Fetches: v.Fetches}, ref
	}
	v.Descends = h.Descends
	if mode != ModeStrict {
		return v, nil
	}
	if !h.Descends {
		// Rewrites allowed: strict checks the head alone, there being no
		// "since the applied one" on a history that does not contain it.
		return v, nil
	}
	if !h.Complete {
		return Verdict{Fetches: v.Fetches}, &Refusal{Reason: ReasonUnverifiable, Commit: head.ID,
			Detail: fmt.Sprintf("commit %s: the commits since the applied revision %s cannot all be checked within %d commits of history (--verify-signatures strict)", source.Short(head.ID), source.Short(base), depth)}
	}
	for _, c := range h.Commits {
		if c.ID == head.ID {
			continue
		}
		s, ref := k.verify(c, now)
		if ref != nil {
			ref.Detail += fmt.Sprintf("; it lies between the applied revision %s and the new head %s, and --verify-signatures strict checks every commit in between", source.Short(base), source.Short(head.ID))
			return Verdict{Fetches: v.Fetches}, ref
		}
		v.Signers = append(v.Signers, s)
	}
	return v, nil
}

// VerifyCommit checks one commit object (its raw content) against the
// policy's keys. It is what Check does for each commit it must check.
func (p *Policy) VerifyCommit(c source.Commit) (Signer, error) {
	k, err := p.loadKeys()
	if err != nil {
		return Signer{}, err
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	s, ref := k.verify(c, now)
	if ref != nil {
		return Signer{}, ref
	}
	return s, nil
}

// verify checks one commit's signature.
func (k *keys) verify(sc source.Commit, now time.Time) (Signer, *Refusal) {
	c, err := decodeCommit(sc)
	if err != nil {
		return Signer{}, &Refusal{Reason: ReasonBadSignature, Commit: sc.ID,
			Detail: fmt.Sprintf("commit %s cannot be read: %v", source.Short(sc.ID), err)}
	}
	sig := strings.TrimSpace(c.PGPSignature)
	switch {
	case sig == "":
		return Signer{}, &Refusal{Reason: ReasonUnsigned, Commit: sc.ID,
			Detail: fmt.Sprintf("commit %s is not signed", source.Short(sc.ID))}
	case strings.HasPrefix(sig, sshsigBegin):
		key, ref := k.verifySSH(c, now)
		return Signer{Commit: sc.ID, Key: key}, ref
	case strings.HasPrefix(sig, "-----BEGIN PGP SIGNATURE-----"):
		key, ref := verifyOpenPGP(c, k.pgp)
		return Signer{Commit: sc.ID, Key: "openpgp " + key}, ref
	}
	first, _, _ := strings.Cut(sig, "\n")
	return Signer{}, &Refusal{Reason: ReasonBadSignature, Commit: sc.ID,
		Detail: fmt.Sprintf("commit %s carries a signature of a kind not supported (%.60q): SSH and OpenPGP are", source.Short(sc.ID), first)}
}

func decodeCommit(sc source.Commit) (*object.Commit, error) {
	o := &plumbing.MemoryObject{}
	o.SetType(plumbing.CommitObject)
	if _, err := o.Write(sc.Raw); err != nil {
		return nil, err
	}
	if o.Hash().String() != sc.ID {
		return nil, fmt.Errorf("its content hashes to %s", o.Hash())
	}
	var c object.Commit
	if err := c.Decode(o); err != nil {
		return nil, err
	}
	return &c, nil
}

func (k *keys) verifySSH(c *object.Commit, now time.Time) (string, *Refusal) {
	id := c.Hash.String()
	sig, err := ParseSSHSignature([]byte(c.PGPSignature))
	if err != nil {
		return "", &Refusal{Reason: ReasonBadSignature, Commit: id,
			Detail: fmt.Sprintf("commit %s carries an SSH signature that cannot be read: %v", source.Short(id), err)}
	}
	key := describeSSHKey(sig.PublicKey)
	fp := "ssh " + key
	if len(k.ssh) == 0 {
		return "", &Refusal{Reason: ReasonUntrustedKey, Commit: id, Key: key,
			Detail: fmt.Sprintf("commit %s is signed with SSH key %s, and no allowed signers file is configured (--allowed-signers-file)", source.Short(id), key)}
	}
	want := sig.PublicKey.Marshal()
	var principals []string
	var why []string
	for _, s := range k.ssh {
		if !bytes.Equal(s.Key.Marshal(), want) {
			continue
		}
		if ok, reason := s.allows(Namespace, now); !ok {
			why = append(why, fmt.Sprintf("line %d (%s): %s", s.Line, s.Principals, reason))
			continue
		}
		principals = append(principals, s.Principals)
	}
	if len(principals) == 0 {
		detail := fmt.Sprintf("commit %s is signed with SSH key %s, which is not in the allowed signers file", source.Short(id), key)
		if len(why) > 0 {
			detail = fmt.Sprintf("commit %s is signed with SSH key %s, which the allowed signers file does not allow for git commits now: %s", source.Short(id), key, strings.Join(why, "; "))
		}
		return "", &Refusal{Reason: ReasonUntrustedKey, Commit: id, Key: key, Detail: detail}
	}
	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		return "", &Refusal{Reason: ReasonBadSignature, Commit: id, Key: key,
			Detail: fmt.Sprintf("commit %s cannot be read: %v", source.Short(id), err)}
	}
	msg, err := readAll(payload)
	if err != nil {
		return "", &Refusal{Reason: ReasonBadSignature, Commit: id, Key: key,
			Detail: fmt.Sprintf("commit %s cannot be read: %v", source.Short(id), err)}
	}
	if err := sig.Verify(msg, Namespace); err != nil {
		return "", &Refusal{Reason: ReasonBadSignature, Commit: id, Key: key,
			Detail: fmt.Sprintf("commit %s carries an SSH signature by key %s that does not verify: %v", source.Short(id), key, err)}
	}
	return fp + ", principals " + strings.Join(principals, " "), nil
}

func readAll(o *plumbing.MemoryObject) ([]byte, error) {
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(r)
	return buf.Bytes(), err
}

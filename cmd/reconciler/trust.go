package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
)

// trustFlags say what a revision must satisfy before it is used: commit
// signatures, and (for the agent) that it descends from the revision in
// force.
type trustFlags struct {
	verify         string
	allowedSigners string
	gpgKeyring     string
	allowRewrite   bool
}

const trustHelp = `Commit signatures (--verify-signatures): off (default); head, the commit
applied must carry a valid signature by an allowed key; strict, every commit
since the last applied one must (the agent knows it from --state-dir; a
one-shot plan, apply or validate has none, so strict checks the head as head
does). SSH signatures are checked against --allowed-signers-file (the format
of git's gpg.ssh.allowedSignersFile; namespaces, valid-after and valid-before
are honoured, the validity window against the time of the check), OpenPGP
signatures against --gpg-keyring-file (armored public keys). The files are
read again at every new commit, so keys can be rotated without a restart. A
commit that is unsigned or signed by a key not allowed is refused before any
of its files is parsed, with the commit and the key in the error.`

func (t *trustFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.verify, "verify-signatures", "off", "which commits must carry a valid signature by an allowed key: off, head (the commit applied) or strict (every commit since the last applied one; with none, as head)")
	fs.StringVar(&t.allowedSigners, "allowed-signers-file", "", "SSH keys allowed to sign commits, in the format of git's gpg.ssh.allowedSignersFile")
	fs.StringVar(&t.gpgKeyring, "gpg-keyring-file", "", "armored OpenPGP public keys allowed to sign commits (gpg --export --armor)")
}

// registerRewrite adds the agent's anti-rollback switch.
func (t *trustFlags) registerRewrite(fs *pflag.FlagSet) {
	fs.BoolVar(&t.allowRewrite, "allow-history-rewrite", false, "accept a new revision that does not descend from the one in force (a force-push to other or older history); refused by default")
}

// policy checks the flags (and that the key files parse) against src.
func (t *trustFlags) policy(src source.Source) (*trust.Policy, error) {
	mode, err := trust.ParseMode(t.verify)
	if err != nil {
		return nil, fmt.Errorf("--verify-signatures %w", err)
	}
	p := &trust.Policy{Mode: mode, AllowedSignersFile: t.allowedSigners, GPGKeyringFile: t.gpgKeyring, AllowHistoryRewrite: t.allowRewrite}
	if mode == trust.ModeOff && (t.allowedSigners != "" || t.gpgKeyring != "") {
		return nil, fmt.Errorf("--allowed-signers-file and --gpg-keyring-file need --verify-signatures head or strict")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if _, ok := src.(source.Historian); !ok && mode != trust.ModeOff {
		return nil, fmt.Errorf("--verify-signatures %s needs a git source; %s is a plain folder", mode, src)
	}
	return p, nil
}

// resolver is the resolver of a one-shot command: signatures only, there
// being no last applied revision to descend from (strict means head); host
// "" stops before loading (validate --source loads the whole repository).
func (t *trustFlags) resolver(src source.Source, host string, lim v1.Limits) (*desired.Resolver, error) {
	p, err := t.policy(src)
	if err != nil {
		return nil, err
	}
	return &desired.Resolver{Source: src, Host: host, Trust: p, Limits: lim}, nil
}

// resolve fetches, judges and (with a host) loads src.
func (t *trustFlags) resolve(ctx context.Context, src source.Source, host string, lim v1.Limits) (*desired.Resolution, error) {
	r, err := t.resolver(src, host, lim)
	if err != nil {
		return nil, err
	}
	res, err := r.Resolve(ctx, desired.ResolveOptions{})
	if trust.IsRefusal(err) {
		return nil, fmt.Errorf("revision %s refused: %w", source.Short(res.Artifact.Revision.ID), err)
	}
	return res, err
}

// commitCheck is the signature check of the flags as a source's
// CommitCheck, or nil when signatures are off (or the flags are wrong:
// policy reports that).
func (t *trustFlags) commitCheck() func(source.Commit) error {
	mode, err := trust.ParseMode(t.verify)
	if err != nil || mode == trust.ModeOff {
		return nil
	}
	p := &trust.Policy{Mode: mode, AllowedSignersFile: t.allowedSigners, GPGKeyringFile: t.gpgKeyring}
	return func(c source.Commit) error {
		_, err := p.VerifyCommit(c)
		return err
	}
}

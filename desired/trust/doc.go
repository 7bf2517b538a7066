// Package trust decides whether a fetched revision may be applied at all,
// before any of its files is parsed: whoever can push to the followed ref
// decides the host's desired state, so the agent, not git, limits what a
// push can do.
//
// A Policy (policy.go) holds two checks. Signatures, by Mode: off, head
// (the commit applied must be signed by an allowed key) or strict (every
// commit since the last applied one must be). Keys come from an allowed
// signers file in git's gpg.ssh.allowedSignersFile format
// (allowedsigners.go; signatures in OpenSSH's PROTOCOL.sshsig, sshsig.go)
// and from an armored OpenPGP keyring (openpgp.go, verified through
// go-git). Anti-rollback: unless AllowHistoryRewrite, the new revision must
// descend from the last applied one; the history between them comes from
// the source's cache, deepened from the git server only when the cache
// cannot tell, up to MaxDepth commits.
//
// Policy.Check returns a *Refusal (tested with IsRefusal or errors.As) when
// the revision must never be applied, with a Reason constant, the commit at
// fault and the key; any other error means it could not be judged (git
// unreachable, a key file unreadable) and the pass tries again later. The
// revision in force stays in force either way. Validate checks the policy
// and parses its key files once at start, so a mistake shows before the
// first commit does.
//
// The allowed signers and SSH signature parsers and commit verification
// have fuzz targets (fuzz_test.go); a keyring is bounded in size, an
// allowed signers file per line.
package trust

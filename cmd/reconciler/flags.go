package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/source"
)

// sourceFlags are the flags that say where the desired state lives.
type sourceFlags struct {
	source, ref, path, host string
	cacheDir                string
	tokenFile, basicAuth    string
	sshKey, knownHosts      string
	timeout                 time.Duration
	trust                   trustFlags // trust.go
	limits                  limitFlags // limits.go
	reach                   reachFlags // reach.go
}

func (f *sourceFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.source, "source", "", "desired state: a git URL (https://, ssh://, git@host:path, file://) or a local folder (required)")
	fs.StringVar(&f.ref, "ref", "", "branch, tag or commit (default: the remote's HEAD branch)")
	fs.StringVar(&f.path, "path", "", "folder inside the repository holding the documents")
	fs.StringVar(&f.host, "host", "", "host name whose state to apply (default: the OS host name)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "where fetched revisions are kept (default: the user cache folder, or /var/cache/reconciler)")
	f.registerCredentials(fs)
	f.trust.register(fs)
	f.limits.register(fs)
}

// registerCredentials adds the flags that say how to reach a git --source:
// credentials, the host key and the timeout.
func (f *sourceFlags) registerCredentials(fs *pflag.FlagSet) {
	fs.StringVar(&f.tokenFile, "git-token-file", "", "https: file holding a token (sent as the password of user git)")
	fs.StringVar(&f.basicAuth, "git-basic-auth-file", "", "https: file holding user:password")
	fs.StringVar(&f.sshKey, "ssh-key-file", "", "ssh: private key file")
	fs.StringVar(&f.knownHosts, "known-hosts-file", "", "ssh: known_hosts file the server's host key must be in (required for ssh)")
	fs.DurationVar(&f.timeout, "git-timeout", source.DefaultTimeout, "timeout of each git network operation")
}

// registerFetch adds the flags that say how to fetch from a git --source
// (cache and credentials), for commands that read a repository but run no
// pass (validate --source, diff).
func (f *sourceFlags) registerFetch(fs *pflag.FlagSet) {
	fs.StringVar(&f.cacheDir, "cache-dir", "", "with --source: where fetched revisions are kept")
	f.registerCredentials(fs)
}

func (f *sourceFlags) open() (source.Source, error) {
	if f.source == "" {
		return nil, errors.New("--source is required (a git URL or a local folder)")
	}
	return source.Open(source.Options{
		URL: f.source, Ref: f.ref, Path: f.path, CacheDir: f.cacheDir,
		TokenFile: f.tokenFile, BasicAuthFile: f.basicAuth,
		SSHKeyFile: f.sshKey, KnownHostsFile: f.knownHosts,
		Timeout: f.timeout,
		Limits:  f.limits.src,
		// The signature is checked from the commit object before any of
		// its tree is read: an unsigned commit costs one object.
		CommitCheck: f.trust.commitCheck(),
	})
}

func (f *sourceFlags) hostName() (string, error) {
	if f.host != "" {
		return f.host, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("--host not given and the OS host name is unknown: %w", err)
	}
	return h, nil
}

// resolve fetches and loads the host's snapshot. Invalid revisions, and
// those needing more than the limit flags allow, come back with every
// error, positioned.
func (f *sourceFlags) resolve(ctx context.Context) (*desired.Snapshot, error) {
	src, err := f.open()
	if err != nil {
		return nil, err
	}
	host, err := f.hostName()
	if err != nil {
		return nil, err
	}
	res, err := f.trust.resolve(ctx, src, host, f.limits.parse)
	if err != nil {
		return nil, err
	}
	if err := res.Snapshot.Confine(f.reach.reach()); err != nil {
		return nil, err
	}
	return res.Snapshot, nil
}

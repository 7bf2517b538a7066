package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/pflag"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/compose"
	"reconciler.dev/reconciler/controllers/daemontools"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/supervisor"
	"reconciler.dev/reconciler/controllers/swarm"
	"reconciler.dev/reconciler/controllers/systemd"
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
	fs.StringVar(&f.tokenFile, "git-token-file", "", "https: file holding a token (sent as the password of user git)")
	fs.StringVar(&f.basicAuth, "git-basic-auth-file", "", "https: file holding user:password")
	fs.StringVar(&f.sshKey, "ssh-key-file", "", "ssh: private key file")
	fs.StringVar(&f.knownHosts, "known-hosts-file", "", "ssh: known_hosts file the server's host key must be in (required for ssh)")
	fs.DurationVar(&f.timeout, "git-timeout", source.DefaultTimeout, "timeout of each git network operation")
	f.trust.register(fs)
	f.limits.register(fs)
}

// registerFetch adds the flags that say how to fetch from a git --source
// (cache and credentials), for commands that read a repository but run no
// pass (validate --source, diff).
func (f *sourceFlags) registerFetch(fs *pflag.FlagSet) {
	fs.StringVar(&f.cacheDir, "cache-dir", "", "with --source: where fetched revisions are kept")
	fs.StringVar(&f.tokenFile, "git-token-file", "", "https: file holding a token")
	fs.StringVar(&f.basicAuth, "git-basic-auth-file", "", "https: file holding user:password")
	fs.StringVar(&f.sshKey, "ssh-key-file", "", "ssh: private key file")
	fs.StringVar(&f.knownHosts, "known-hosts-file", "", "ssh: known_hosts file (required for ssh)")
	fs.DurationVar(&f.timeout, "git-timeout", source.DefaultTimeout, "timeout of each git network operation")
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

// setCallTimeout bounds each call of the drivers that talk to a daemon
// (0 keeps their default).
func setCallTimeout(e *engine.Engine, d time.Duration) {
	if d <= 0 {
		return
	}
	for _, drv := range e.Drivers {
		switch drv := drv.(type) {
		case *swarm.Driver:
			drv.CallTimeout = d
		case *compose.Driver:
			drv.CallTimeout = d
		case *systemd.Driver:
			drv.CallTimeout = d
		case *supervisor.Driver:
			drv.CallTimeout = d
		}
	}
}

// newEngine wires the drivers. Clients connect lazily: a host with no Swarm
// services never talks to Docker.
func newEngine() (*engine.Engine, func(), error) {
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, nil, fmt.Errorf("docker client: %w", err)
	}
	sysd := systemd.New()
	e := &engine.Engine{
		Drivers: map[v1.Driver]controllers.Driver{
			v1.DriverSwarm:      &swarm.Driver{API: docker},
			v1.DriverSystemd:    sysd,
			v1.DriverSupervisor: supervisor.New(),
			v1.DriverCompose:    &compose.Driver{API: docker},

			v1.DriverDaemontools: &daemontools.Driver{},
		},
	}
	return e, func() { docker.Close(); sysd.Close() }, nil
}

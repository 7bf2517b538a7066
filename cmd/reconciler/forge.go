package main

import (
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"reconciler.dev/reconciler/forge"
)

// forgeFlags say where the agent posts its commit statuses.
type forgeFlags struct {
	api, repo, tokenFile, statusURL string
	minInterval                     time.Duration
}

func (f *forgeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.api, "forge-api", "", "commit statuses: the forge's API root (https://api.github.com, or a Gitea's https://HOST/api/v1)")
	fs.StringVar(&f.repo, "forge-repo", "", "commit statuses: the repository as owner/name")
	fs.StringVar(&f.tokenFile, "forge-token-file", "", "commit statuses: file holding an API token allowed to write statuses")
	fs.StringVar(&f.statusURL, "forge-status-url", "", "commit statuses: target URL (this agent's status page, as the forge's users reach it)")
	fs.DurationVar(&f.minInterval, "forge-min-interval", time.Second, "commit statuses: least time between two posts")
}

// reporter is nil when no forge is configured.
func (f *forgeFlags) reporter(log *slog.Logger) (*forge.Reporter, error) {
	if f.api == "" && f.repo == "" && f.tokenFile == "" {
		return nil, nil
	}
	if f.api == "" || f.repo == "" || f.tokenFile == "" {
		return nil, errors.New("--forge-api, --forge-repo and --forge-token-file go together")
	}
	return &forge.Reporter{
		Poster:      &forge.Client{API: f.api, Repo: f.repo, TokenFile: f.tokenFile},
		Log:         log,
		MinInterval: f.minInterval,
	}, nil
}

package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/controllers/monitor"
	"reconciler.dev/reconciler/notify"
)

func newRunCommand() *cobra.Command {
	var (
		sf                  sourceFlags
		interval            time.Duration
		listen, stateDir    string
		webhookSecret       string
		gitlabToken         string
		ff                  forgeFlags
		tokenFile, hookAddr string
		allowedHosts        []string
		notifyFile          string
		logFormat, logLevel string
		monitorInterval     time.Duration
		healthyWithin       time.Duration
		callTimeout         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run --source S [--interval 30s] [--listen 127.0.0.1:9440] [--state-dir DIR]",
		Short: "Run the agent: converge from git unattended, report drift",
		Long: `run is the agent. At start, then every --interval (jittered by 10%; the
first wait since start by 50%, so agents restarted together do not poll git
together), and at once when a verified webhook arrives, it looks the source's ref up (fetching only when it
moved), validates the revision, plans and applies a pass, and reports.

A revision that fails to fetch, parse or validate is never applied: the last
good revision stays in force and keeps being enforced, and /status says which
revision failed and why (file:line:col). The revision in force is written to
--state-dir before it is applied, so a restart without git access still
enforces it, and an agent killed mid-pass re-plans from live state.

SIGTERM or SIGINT: the current action is finished or abandoned cleanly (a
Docker update is never cut half way), the state is written, exit 0. A second
signal exits at once.

Anti-rollback: a new revision that does not descend from the one in force (a
force-push to other or older history, a replayed old commit) is refused,
and /status says so, unless --allow-history-rewrite. The history between
the two commits comes from the source cache, deepened from the git server
(depth 2, 4, 8 ... up to 1024 commits) only when the cache cannot tell;
never on a poll where the ref did not move. A commit farther than that from
the revision in force is refused as not known to descend from it. Changing
--source or --ref to another history needs --allow-history-rewrite once.

` + trustHelp + `

` + reachHelp + `

Refusals show in /status failedRevision (cause, commit, key), in
reconciler_revision_refusals_total{reason} and as revision-refused events.
Turning verification on does not re-judge the revision already in force.

Endpoints on --listen (loopback by default): /healthz and /readyz, open
everywhere (they say ok or ready, nothing more); the read endpoints
/status, /events (SSE, at most 32 streams), /passes/{id}, /metrics and /
(a status page); POST /webhook (HMAC-SHA256 X-Hub-Signature-256 with the
secret of --webhook-secret-file, at least 16 bytes, checked at start; 401
otherwise; refusals are folded into one event a minute, and after 30 in a
minute answered 429). --webhook-listen gives the webhook a listener of its
own (then --listen no longer serves it). The read endpoints need
"Authorization: Bearer <token>" with the token of --token-file (at least 16
bytes, read at every request) whenever it is given; a --listen address that
is not loopback refuses to start without it. On a loopback --listen, a
request whose Host header is not localhost, a loopback address, the listen
address or an --allowed-host is refused (403: DNS rebinding). Servers have
read, write and idle timeouts (30 s, 30 s per write, 2 min).

POST /webhook authenticates a delivery with the secret of
--webhook-secret-file (401 otherwise): GitHub's X-Hub-Signature-256
("sha256=<hex>" HMAC-SHA256 of the body), Gitea's X-Gitea-Signature (bare
hex) or the same header, GitLab's X-Gitlab-Token (the secret itself, or the
one in --webhook-gitlab-token-file; compared in constant time), or the
generic form X-Signature-256: sha256=<hex> with an optional
X-Reconciler-Event (default push) and a body {"ref": "refs/heads/..."}. Only a
push to the ref of the revision in force triggers a pass (202); other events
(ping, pull requests, tags) and pushes to other refs are answered 200 and
recorded as "webhook" events saying why they were ignored. A delivery id seen
before is a replay: 200, ignored.

With --forge-api, --forge-repo and --forge-token-file the agent posts a commit
status with context reconciler/<host> (GitHub's and Gitea's API: POST
{api}/repos/{owner}/{name}/statuses/{sha}) for each revision it judges:
pending while a pass applies changes, success when the pass converged and
every object is ready, failure with the reason (a refused revision: its
first file:line:col error; a failed pass: the failing stage and object). The
target URL is --forge-status-url when given. Statuses are posted from their
own goroutine, an unchanged one is not posted again, posts are spaced by
--forge-min-interval, and a forge that is down is retried with backoff and
logged: it never delays or fails a pass.

With --notify-file FILE (YAML or JSON) the agent notifies the targets listed
there of its host's conditions: revision-refused, pass-failed, drift-left,
maintenance, failure-gave-up and revision-quarantined, each with host, revision and pass id, sent
when it fires and again when it resolves. Target kinds: webhook (a JSON POST
signed X-Reconciler-Signature-256: sha256=<hex HMAC-SHA256 of the body> with
the key in secretFile), slack (an incoming webhook, {"text": ...}) and
alertmanager (url is Alertmanager's root; alerts POSTed to /api/v2/alerts
with labels alertname and host, resolved by endsAt). For example:

  targets:
    - {kind: alertmanager, url: "http://127.0.0.1:9093"}
    - {kind: slack, url: "https://hooks.slack.com/services/T/B/X"}
    - {kind: webhook, url: "https://ops.example/hook",
       secretFile: /etc/reconciler/notify-secret, events: [pass-failed]}

A condition already notified is not sent again (one still firing is re-sent
to Alertmanager every 20 minutes); each target has its own bounded queue, retried with
backoff when it is down, dropping (and logging) the oldest when full: a
target never delays or fails a pass.

Every --monitor-interval (apart from passes; 0 turns it off) the agent reads
the resource figures of every declared service: RSS, VMS, CPU seconds,
processes, threads, open descriptors and established TCP connections of
every replica and its children, from systemd's unit properties, Docker's
one-shot stats and /proc. They are in /status (objects[].resources), in
/metrics (reconciler_service_memory_bytes{service} and friends) and on
/events (type resources); /status monitor says what the last collection
cost. GET /passes/{id} shows one pass with its events (reconciler status
--pass).

Every call to Docker, systemd (over D-Bus) and supervisord is bounded by
--call-timeout, every git network operation by --git-timeout. A daemon that
freezes rather than dies (SIGSTOP, a bus daemon that stops reading, a git
server that accepts and never answers, a cut link) shows in /status stuck
(daemon, the oldest call waiting, since when, calls timed out) once a call
has waited half its timeout, until one of its calls is answered again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			// Parts that log without a pass of their own use the same
			// format and destination.
			slog.SetDefault(logger)
			if sf.cacheDir == "" {
				sf.cacheDir = filepath.Join(stateDir, "source")
			}
			src, err := sf.open()
			if err != nil {
				return err
			}
			pol, err := sf.trust.policy(src)
			if err != nil {
				return err
			}
			host, err := sf.hostName()
			if err != nil {
				return err
			}
			w, err := newWiring()
			if err != nil {
				return err
			}
			defer w.close()
			w.setCallTimeout(callTimeout)
			w.setStateDir(stateDir)
			// The status shows uptime: starts the lists lack are read once per run.
			w.compose.StartTimes, w.systemd.StartTimes = true, true
			eng := w.engine
			var mon *monitor.Collector
			if monitorInterval > 0 {
				mon = w.monitor()
				if cmd.Flags().Changed("call-timeout") {
					mon.CallTimeout = callTimeout
				}
			}
			rep, err := ff.reporter(logger)
			if err != nil {
				return err
			}
			var notifier *notify.Notifier
			if notifyFile != "" {
				nc, err := notify.LoadFile(notifyFile)
				if err != nil {
					return err
				}
				notifier = notify.New(host, nc, logger)
			}
			a, err := agent.New(agent.Config{
				Source: src, Host: host, Engine: eng, StateDir: stateDir, Interval: interval,
				Listen: listen, WebhookSecretFile: webhookSecret, WebhookGitLabTokenFile: gitlabToken, Log: logger,
				TokenFile: tokenFile, WebhookListen: hookAddr, AllowedHosts: allowedHosts,
				Autoscaler: w.autoscaler,
				Monitor:    mon, MonitorInterval: monitorInterval,
				Trust: pol, Limits: sf.limits.parse, Reach: sf.reach.reach(),
				Forge: rep, StatusURL: ff.statusURL,
				CallTimeout: callTimeout, GitTimeout: sf.timeout,
				Notify: notifier, HealthyWithin: healthyWithin,
			})
			if err != nil {
				return err
			}
			if mon != nil {
				mon.Count = a.CallCounter("monitor")
			}
			w.swarm.Count = a.CallCounter("swarm")
			w.systemd.Count = a.CallCounter("systemd")
			return a.Run(cmd.Context())
		},
	}
	sf.register(cmd.Flags())
	sf.reach.register(cmd.Flags())
	sf.trust.registerRewrite(cmd.Flags())
	cmd.Flags().DurationVar(&interval, "interval", 30*time.Second, "time between passes when nothing triggers one")
	cmd.Flags().DurationVar(&healthyWithin, "healthy-within", 0, "quarantine a new revision whose passes do not end converged and ready within this long of its coming into force, and put the last healthy revision back (0: never)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9440", "address of the HTTP endpoints (empty: none)")
	cmd.Flags().StringVar(&stateDir, "state-dir", defaultStateDir, "where the revision in force and the source cache are kept")
	cmd.Flags().StringVar(&webhookSecret, "webhook-secret-file", "", "file holding the webhook's HMAC secret, at least 16 bytes (without it, /webhook answers 401)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the bearer token the read endpoints (/status, /events, /passes, /metrics, /) want, at least 16 bytes; required when --listen is not loopback")
	cmd.Flags().StringVar(&hookAddr, "webhook-listen", "", "serve POST /webhook (and /healthz) on this address of its own instead of --listen; needs --webhook-secret-file")
	cmd.Flags().StringSliceVar(&allowedHosts, "allowed-host", nil, "Host header names a loopback --listen accepts besides localhost, loopback addresses and its own (a list; for a local reverse proxy)")
	cmd.Flags().StringVar(&gitlabToken, "webhook-gitlab-token-file", "", "file holding the X-Gitlab-Token GitLab sends (default: the webhook secret)")
	ff.register(cmd.Flags())
	cmd.Flags().StringVar(&notifyFile, "notify-file", "", "notifications: YAML or JSON file of targets (webhook, slack, alertmanager)")
	cmd.Flags().DurationVar(&monitorInterval, "monitor-interval", agent.DefaultMonitorInterval, "collect the services' resource figures at most this often (0: never)")
	cmd.Flags().DurationVar(&callTimeout, "call-timeout", agent.DefaultCallTimeout, "bound of each call to Docker, systemd (D-Bus) and supervisord; a call waiting half of it shows in /status stuck")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

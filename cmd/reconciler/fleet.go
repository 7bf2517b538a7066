package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/fleet"
)

func newFleetCommand() *cobra.Command {
	return newGroupCommand("fleet", "Which hosts run which revision, in sync or not",
		`fleet asks many agents at once. Each host runs its own agent and git is the
only writer; this view only reads every agent's /status, --concurrency at
once, each within --timeout, or asks Prometheus (--prometheus URL), which
scrapes them all already.`,
		newFleetStatusCommand(), newFleetServeCommand(), newFleetPromoteCommand())
}

type fleetFlags struct {
	agents, revision string
	tokenFile        string
	timeout          time.Duration
	// rollout, when set, adds --waves and the rest: the report then holds
	// the rollout in waves too.
	rollout       *rolloutFlags
	concurrency   int
	prometheus    string
	prometheusJob string
}

func (f *fleetFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.agents, "agents", "", "agent addresses: a file (one per line) or a comma-separated list, e.g. a:9440,b:9440 (required unless --prometheus)")
	cmd.Flags().StringVar(&f.revision, "revision", "", "the revision every host should run (default: the newest any agent runs)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for each agent (with --prometheus: for Prometheus's answers)")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the agents' bearer token (their --token-file), sent to every agent")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", fleet.DefaultConcurrency, "how many agents are asked at once")
	cmd.Flags().StringVar(&f.prometheus, "prometheus", "", "answer from this Prometheus (e.g. http://prometheus:9090) instead of asking each agent; with --agents, only those agents (by instance), the ones Prometheus lacks unreachable")
	cmd.Flags().StringVar(&f.prometheusJob, "prometheus-job", fleet.DefaultPrometheusJob, "the scrape job of the agents in Prometheus")
}

// errNotInPrometheus is the answer for an agent of --agents that Prometheus
// does not scrape in the job.
var errNotInPrometheus = errors.New("not a target of Prometheus's job")

func (f *fleetFlags) check() error {
	if f.agents == "" && f.prometheus == "" {
		return errors.New("--agents or --prometheus is required")
	}
	if f.concurrency < 1 {
		return fmt.Errorf("--concurrency %d: want at least 1", f.concurrency)
	}
	if f.agents != "" {
		if _, err := fleet.ParseAgents(f.agents); err != nil {
			return err
		}
	}
	_, err := agent.ReadToken(f.tokenFile)
	return err
}

// registerRollout adds the rollout flags (fleet status and serve).
func (f *fleetFlags) registerRollout(cmd *cobra.Command) {
	f.rollout = &rolloutFlags{}
	f.rollout.register(cmd)
}

func (f *fleetFlags) report(ctx context.Context) (fleet.Report, error) {
	agents, answers, err := f.collect(ctx)
	if err != nil {
		return fleet.Report{}, err
	}
	rep := fleet.Summarize(agents, answers, f.revision, time.Now())
	var ro *fleet.Rollout
	if f.rollout != nil && len(f.rollout.waves) > 0 {
		if ro, _, err = f.rollout.judge(ctx, agents, answers, rep.At); err != nil {
			return rep, err
		}
	}
	label, soak := fleet.DefaultWaveLabel, time.Duration(0)
	if f.rollout != nil {
		label, soak = f.rollout.waveLabel, f.rollout.soak
	}
	rep.AddRollout(answers, ro, label, soak)
	return rep, nil
}

// collect asks every agent for its /status (--concurrency at once), or
// Prometheus for its latest scrapes of them.
func (f *fleetFlags) collect(ctx context.Context) ([]string, map[string]fleet.Answer, error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	var agents []string
	if f.agents != "" {
		agents, _ = fleet.ParseAgents(f.agents)
	}
	if f.prometheus != "" {
		known, got, err := fleet.Prometheus{URL: f.prometheus, Job: f.prometheusJob, Timeout: f.timeout}.Collect(ctx)
		if err != nil {
			return nil, nil, err
		}
		if agents == nil {
			agents = known
		}
		for _, a := range agents {
			if _, ok := got[a]; !ok {
				got[a] = fleet.Answer{Err: errNotInPrometheus}
			}
		}
		return agents, got, nil
	}
	token, _ := agent.ReadToken(f.tokenFile)
	return agents, fleet.Asker{Timeout: f.timeout, Token: token, Concurrency: f.concurrency}.Collect(ctx, agents), nil
}

func newFleetStatusCommand() *cobra.Command {
	var ff fleetFlags
	var output tableOrJSON
	var all bool
	cmd := &cobra.Command{
		Use:   "status --agents LIST | --prometheus URL",
		Short: "Print a summary of the fleet and a table of the agents that are not converged",
		Long: `fleet status asks every agent's /status (--concurrency at once, each within
--timeout), or Prometheus's latest scrapes of them (--prometheus), and
prints a summary line first (converged, drifted, on another revision,
unreachable), then one line per agent that is not converged: host, revision,
in sync, maintenance, drift count, last pass age, reachable. Up to 20
agents every one is listed; in a larger fleet the converged ones are
counted, not listed, unless --all. -o json prints every agent as a
document, with the summary. Where hosts carry a wave
label (README "Rollouts in waves") it adds each host's wave and rollout
state (progressing, soaking, soaked, halted, unavailable); with --waves and
--source it also prints the waves as ` + "`fleet promote --dry-run`" + ` would.

Exit status: 0 when every agent is reachable and converged on the same
revision as --revision (or the newest revision seen), 2 otherwise, 1 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := ff.report(cmd.Context())
			if err != nil {
				return err
			}
			if err := output.write(cmd.OutOrStdout(), rep, func(w io.Writer) { printFleet(w, rep, all) }); err != nil {
				return err
			}
			if !rep.Converged {
				return exitCode(2)
			}
			return nil
		},
	}
	ff.register(cmd)
	ff.registerRollout(cmd)
	output.register(cmd.Flags())
	cmd.Flags().BoolVar(&all, "all", false, "list every agent, the converged ones too (always so up to 20 agents)")
	return cmd
}

// printFleet prints the summary line, then the agents that are not
// converged (every agent with all), then how many were left out.
func printFleet(w io.Writer, rep fleet.Report, all bool) {
	fmt.Fprintln(w, fleet.SummaryLine(rep))
	listed := fleet.Exceptions(rep, all || len(rep.Hosts) <= fleet.ListEveryUpTo)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// The wave columns show only where waves are in use (a host with a
	// wave label, or --waves): a fleet without them reads as before.
	waves := rep.Rollout != nil
	for _, h := range rep.Hosts {
		waves = waves || h.Wave != ""
	}
	header := "HOST\tAGENT\tREVISION\tIN SYNC\tMAINTENANCE\tDRIFT\tLAST PASS\tREACHABLE"
	if waves {
		header += "\tWAVE\tROLLOUT"
	}
	if len(listed) > 0 {
		fmt.Fprintln(tw, header)
	}
	yes := map[bool]string{true: "yes", false: "no"}
	for _, h := range listed {
		host, rev := h.Host, fleet.Short(h.Revision)
		if host == "" {
			host = "?"
		}
		if h.Reachable && !h.OnRevision {
			rev += " (not " + fleet.Short(rep.Revision) + ")"
		}
		reach := "yes"
		if !h.Reachable {
			reach = "no: " + h.Error
		}
		maint := map[bool]string{true: "on", false: "off"}[h.Maintenance]
		last := status.Ago(h.LastPass, rep.At)
		if !h.Reachable {
			rev, maint, last = "-", "-", "-"
		}
		wave, ro := h.Wave, string(h.Rollout)
		if wave == "" {
			wave = "-"
		}
		if h.RolloutReason != "" && h.Rollout != fleet.HostSoaked {
			ro += ": " + h.RolloutReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s", host, h.Agent, rev, yes[h.InSync], maint, h.Drift, last, reach)
		if waves {
			fmt.Fprintf(tw, "\t%s\t%s", wave, ro)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if left := len(rep.Hosts) - len(listed); left > 0 {
		fmt.Fprintf(w, "(%d converged agents not listed; --all lists every agent)\n", left)
	}
	if rep.Rollout != nil {
		fmt.Fprintln(w)
		printRollout(w, *rep.Rollout, true)
	}
}

func newFleetServeCommand() *cobra.Command {
	var ff fleetFlags
	var listen string
	var cacheFor time.Duration
	var allowRemote bool
	cmd := &cobra.Command{
		Use:   "serve --agents LIST | --prometheus URL [--listen 127.0.0.1:9450]",
		Short: "Serve the fleet status as a page (and /fleet.json)",
		Long: `fleet serve serves the fleet table as a page at / and as /fleet.json. A
report is kept for --cache (default 5s): page views within it do not ask
the agents again.

The page shows the summary line first, then the agents that are not
converged (/?all=1 lists every agent; /fleet.json always does). It asks the
agents as fleet status does (--concurrency, --timeout, or --prometheus).

The page shows every agent's host, revision and drift, and the agents'
token is used to ask them: --listen must be a loopback address unless
--allow-non-loopback says otherwise (put an authenticating proxy in front).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ff.check(); err != nil {
				return err
			}
			if host, _, err := net.SplitHostPort(listen); err != nil {
				return fmt.Errorf("--listen %q: %w", listen, err)
			} else if ip := net.ParseIP(host); !allowRemote && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return fmt.Errorf("--listen %q is not a loopback address: the page shows the whole fleet to anyone who reaches it; give --allow-non-loopback to serve it there anyway", listen)
			}
			cache := &fleet.Cache{TTL: cacheFor, Collect: ff.report}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /{$}", serveReport(cache, "text/html; charset=utf-8", func(w io.Writer, r *http.Request, rep fleet.Report) error {
				return fleet.WritePage(w, rep, r.URL.Query().Get("all") != "")
			}))
			mux.HandleFunc("GET /fleet.json", serveReport(cache, "application/json", func(w io.Writer, _ *http.Request, rep fleet.Report) error {
				return json.NewEncoder(w).Encode(rep)
			}))
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
				WriteTimeout: ff.timeout + 30*time.Second, IdleTimeout: 2 * time.Minute}
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			fmt.Fprintf(cmd.ErrOrStderr(), "fleet page on http://%s/\n", ln.Addr())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	ff.register(cmd)
	ff.registerRollout(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9450", "address to serve the page on (loopback unless --allow-non-loopback)")
	cmd.Flags().DurationVar(&cacheFor, "cache", 5*time.Second, "how long one report of the agents is served before they are asked again")
	cmd.Flags().BoolVar(&allowRemote, "allow-non-loopback", false, "serve on a --listen address that is not loopback")
	return cmd
}

// serveReport answers with the cached fleet report written by write as
// contentType, or 500 when no report could be made.
func serveReport(cache *fleet.Cache, contentType string, write func(io.Writer, *http.Request, fleet.Report) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rep, err := cache.Report(r.Context(), time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", contentType)
		_ = write(w, r, rep)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"reconciler.dev/reconciler/desired/promote"
	"reconciler.dev/reconciler/fleet"
)

// rolloutFlags say what a rollout in waves is (README "Rollouts in
// waves"); fleet status and serve take them too, to show it.
type rolloutFlags struct {
	source, from, refPrefix, waveLabel, gitTokenFile string
	waves                                            []string
	soak                                             time.Duration
	maxUnavailable                                   int
}

func (f *rolloutFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.waves, "waves", nil, "the rollout's waves in order, the canary first (each host's wave is its label --wave-label), e.g. canary,second,rest")
	cmd.Flags().StringVar(&f.source, "source", "", "the git repository of the desired state (a URL the promoter may push to)")
	cmd.Flags().StringVar(&f.from, "from", "main", "the branch operators commit to: what the first wave follows")
	cmd.Flags().StringVar(&f.refPrefix, "ref-prefix", "rollout/", "a wave's branch is this prefix and the wave's name (the --ref of its agents)")
	cmd.Flags().StringVar(&f.waveLabel, "wave-label", fleet.DefaultWaveLabel, "the host label naming its wave")
	cmd.Flags().DurationVar(&f.soak, "soak", 5*time.Minute, "how long every host of a wave must report its revision converged and ready before the next wave gets it")
	cmd.Flags().IntVar(&f.maxUnavailable, "max-unavailable", 0, "hosts of a wave that may be unreachable or failing while the rollout still goes on (a quarantine or refusal always halts it)")
	cmd.Flags().StringVar(&f.gitTokenFile, "git-token-file", "", "https: a file holding a token, sent as the password of user git")
}

func (f *rolloutFlags) spec() fleet.RolloutSpec {
	return fleet.RolloutSpec{Source: f.from, Waves: f.waves, RefPrefix: f.refPrefix, WaveLabel: f.waveLabel,
		Soak: f.soak, MaxUnavailable: f.maxUnavailable}
}

// judge reads the branches and judges the rollout; repo can then move them.
func (f *rolloutFlags) judge(ctx context.Context, agents []string, answers map[string]fleet.Answer, now time.Time) (*fleet.Rollout, *promote.Repo, error) {
	if f.source == "" {
		return nil, nil, errors.New("--waves needs --source (the repository whose branches the waves follow)")
	}
	spec := f.spec()
	branches := []string{spec.Source}
	for _, w := range spec.Waves {
		branches = append(branches, spec.WaveRef(w))
	}
	repo := &promote.Repo{URL: f.source, TokenFile: f.gitTokenFile}
	heads, err := repo.Heads(ctx, branches)
	if err != nil {
		return nil, nil, err
	}
	if heads[spec.Source] == "" {
		return nil, nil, fmt.Errorf("%s: no branch %s", f.source, spec.Source)
	}
	ro := fleet.PlanRollout(spec, agents, answers, heads, repo.Descends, now)
	return &ro, repo, nil
}

func newFleetPromoteCommand() *cobra.Command {
	var ff fleetFlags
	var rf rolloutFlags
	var dryRun bool
	var output tableOrJSON
	cmd := &cobra.Command{
		Use:   "promote --agents LIST --source REPO --waves W1,W2,... [--soak 5m] [--max-unavailable 0]",
		Short: "Move each wave's branch on to the revision the wave before it runs healthy (run from CI or a timer)",
		Long: `promote is one step of a rollout in waves; run it again and again (CI, a
timer). Each host's wave is its label --wave-label; the agents of wave W
follow the branch --ref-prefix W. promote asks every agent's /status and
fast-forwards:
  - the first wave's branch to the head of --from;
  - every other wave's branch to what the wave before it runs, once every
    host of that wave reports that revision converged and ready for --soak
    (at most --max-unavailable of its hosts unreachable or failing).
A host that quarantined or refused its wave's revision halts the rollout at
that wave: promote says which host and why, and moves nothing past it (a
newer commit on --from still reaches the first wave). Git is the only
writer: the agents never talk to each other nor to promote.

--dry-run says what it would move. Exit status: 0 when the rollout goes on
or is done, 2 when it is halted, 1 on error (git, or no agent answers).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(rf.waves) == 0 {
				return errors.New("--waves is required")
			}
			ro, repo, err := rolloutReport(cmd.Context(), &ff, &rf)
			if err != nil {
				return err
			}
			var moved []string
			for i := range ro.Waves {
				p := ro.Waves[i].Promote
				if p == nil || dryRun {
					continue
				}
				if err := repo.FastForward(cmd.Context(), p.Ref, p.From, p.To); err != nil {
					return fmt.Errorf("promoting wave %s: %w", ro.Waves[i].Name, err)
				}
				moved = append(moved, fmt.Sprintf("%s %s -> %s", p.Ref, fleet.Short(p.From), fleet.Short(p.To)))
			}
			if err := output.write(cmd.OutOrStdout(), ro, func(w io.Writer) { printRollout(w, *ro, dryRun) }); err != nil {
				return err
			}
			for _, m := range moved {
				fmt.Fprintf(cmd.ErrOrStderr(), "promoted %s\n", m)
			}
			if ro.Halted {
				return exitCode(2)
			}
			return nil
		},
	}
	ff.register(cmd)
	rf.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be promoted, move nothing")
	output.register(cmd.Flags())
	return cmd
}

func rolloutReport(ctx context.Context, ff *fleetFlags, rf *rolloutFlags) (*fleet.Rollout, *promote.Repo, error) {
	agents, answers, err := ff.collect(ctx)
	if err != nil {
		return nil, nil, err
	}
	return rf.judge(ctx, agents, answers, time.Now())
}

// printRollout prints one line per wave, then one per host.
func printRollout(w io.Writer, ro fleet.Rollout, dryRun bool) {
	fmt.Fprintf(w, "source %s at %s\n", ro.Source, fleet.Short(ro.Revision))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tREF\tREVISION\tSTATE\tHOSTS\tNEXT")
	for _, wv := range ro.Waves {
		next := wv.Blocked
		if p := wv.Promote; p != nil {
			verb := "promoted"
			if dryRun {
				verb = "would promote"
			}
			next = fmt.Sprintf("%s %s -> %s", verb, fleet.Short(p.From), fleet.Short(p.To))
		}
		if next == "" {
			next = "-"
		}
		var counts []string
		for _, s := range []fleet.HostState{fleet.HostSoaked, fleet.HostSoaking, fleet.HostProgressing, fleet.HostUnavailable, fleet.HostHalted} {
			if n := wv.Counts[string(s)]; n > 0 {
				counts = append(counts, fmt.Sprintf("%d %s", n, s))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", wv.Name, wv.Ref, fleet.Short(wv.Revision), wv.State, strings.Join(counts, ", "), next)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tWAVE\tREVISION\tSTATE\tWHY")
	for _, wv := range ro.Waves {
		for _, h := range wv.Hosts {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", orUnknown(h.Host, h.Agent), wv.Name, fleet.Short(h.Revision), h.State, h.Reason)
		}
	}
	for _, h := range ro.Unassigned {
		fmt.Fprintf(tw, "  %s\t-\t%s\t%s\t%s\n", orUnknown(h.Host, h.Agent), fleet.Short(h.Revision), h.State, h.Reason)
	}
	tw.Flush()
	switch {
	case ro.Halted:
		for _, wv := range ro.Waves {
			if wv.State == fleet.WaveHalted && wv.Halt != nil {
				fmt.Fprintf(w, "HALTED at wave %s: %s\n", wv.Name, wv.Reason)
				break
			}
		}
	case ro.Done:
		fmt.Fprintf(w, "done: every wave soaked on %s\n", fleet.Short(ro.Revision))
	}
}

func orUnknown(host, agentAddr string) string {
	if host != "" {
		return host
	}
	return agentAddr
}

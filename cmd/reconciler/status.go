package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

func newStatusCommand() *cobra.Command {
	var listen, output, pass, tokenFile string
	cmd := &cobra.Command{
		Use:   "status [--listen ADDR] [--pass ID]",
		Short: "Ask a running agent how it is doing",
		Long: `status asks the agent listening on --listen for its /status and prints it:
host, revision in force, refused revision (with file:line:col), source,
maintenance, last pass, conditions, the services' resource figures and
drift. -o json prints /status as it is.

--pass ID shows one pass (transaction) instead: its trigger, revision and
result, each stage with its timing, each action with its outcome and error,
and every event it raised in order. ID is a pass id as /status and the logs
print it, a unique prefix of one, or "last". Exit status with --pass: 0 when
that pass converged or found everything in sync, 2 when it failed, 1 when
the agent cannot be reached or no longer lists that pass.

Exit status: 0 when the agent answers and its last pass succeeded, 2 when it
answers but is not ready (drift it could not fix, a failed pass), 1 when it
cannot be reached.

An agent listening beyond loopback wants its token: --token-file names a
file holding it (the agent's own --token-file).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := agent.ReadToken(tokenFile)
			if err != nil {
				return err
			}
			if pass != "" {
				return showPass(cmd, listen, pass, output, token)
			}
			st, raw, err := fetchStatus(cmd.Context(), listen, token)
			if err != nil {
				return err
			}
			if err := writeOutput(cmd.OutOrStdout(), output, raw, func(w io.Writer) { printStatus(w, st) }); err != nil {
				return err
			}
			if !conditionTrue(st, names.ConditionReady) {
				return exitCode(2)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9440", "address of the agent")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the agent's bearer token (its --token-file), sent as Authorization: Bearer")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&pass, "pass", "", "show one of the last 20 passes: its id (or a unique prefix, or \"last\"), actions, outcomes, stage timings, errors and events")
	return cmd
}

func fetchStatus(ctx context.Context, addr, token string) (status.Status, []byte, error) {
	var st status.Status
	raw, code, err := agentGet(ctx, addr, "/status", token)
	if err != nil {
		return st, nil, err
	}
	if code != http.StatusOK {
		return st, nil, answerError(addr, "/status", code, raw)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, nil, fmt.Errorf("agent at %s: %w", addr, err)
	}
	return st, raw, nil
}

// answerError says why an endpoint did not answer 200; a 401 says which
// flag is missing.
func answerError(addr, path string, code int, body []byte) error {
	if code == http.StatusUnauthorized {
		return fmt.Errorf("agent at %s: %s: 401 Unauthorized: the agent wants its token (give --token-file)", addr, path)
	}
	return fmt.Errorf("agent at %s: %s: %d %s: %s", addr, path, code, http.StatusText(code), strings.TrimSpace(string(body)))
}

func conditionTrue(st status.Status, typ string) bool {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return false
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func printStatus(w io.Writer, st status.Status) {
	fmt.Fprintf(w, "host:        %s (%s)\n", st.Host, st.Phase)
	if r := st.Revision; r != nil {
		fmt.Fprintf(w, "revision:    %s %q by %s, in force since %s\n", shortID(r.ID), r.Message, r.Author, ago(r.Since))
	} else {
		fmt.Fprintln(w, "revision:    none in force yet")
	}
	if f := st.FailedRevision; f != nil {
		fmt.Fprintf(w, "refused:     %s %q: %s\n", shortID(f.ID), f.Message, f.Reason)
		for _, e := range f.Errors {
			fmt.Fprintf(w, "               %s\n", e.Error())
		}
	}
	if r := st.Revision; r != nil {
		switch {
		case !r.HealthySince.IsZero():
			fmt.Fprintf(w, "healthy:     since %s\n", ago(r.HealthySince))
		default:
			for _, c := range st.Conditions {
				if c.Type == names.ConditionRevisionHealthy {
					fmt.Fprintf(w, "healthy:     no (%s): %s\n", c.Reason, c.Message)
				}
			}
		}
		if r.Reverted != "" {
			fmt.Fprintf(w, "reverted:    back in force in place of %s\n", shortID(r.Reverted))
		}
	}
	for _, q := range st.Quarantined {
		fmt.Fprintf(w, "quarantined: %s %q %s (since %s; release: reconciler quarantine release %s)\n",
			shortID(q.ID), q.Message, q.Describe(), ago(q.At), shortID(q.ID))
	}
	src := "ok, last fetch " + ago(st.Source.LastFetch)
	if st.Source.Failing {
		src = fmt.Sprintf("FAILING since %s: %s", ago(st.Source.FailingSince), st.Source.LastError)
	}
	fmt.Fprintf(w, "source:      %s (%s)\n", st.Source.URL, src)
	for _, c := range st.Stuck {
		fmt.Fprintf(w, "stuck:       %s does not answer: %s waiting since %s (%d calls timed out)\n", c.Daemon, c.Call, ago(c.Since), c.TimedOut)
	}
	if m := st.Maintenance; m != nil {
		fmt.Fprintf(w, "maintenance: %s\n", describeMaintenance(*m))
	}
	if p := st.LastPass; p != nil {
		fmt.Fprintf(w, "last pass:   %s %s (%s, %d actions, took %s, ended %s)", p.ID, p.Result, p.Trigger, len(p.Actions),
			p.End.Sub(p.Start).Round(time.Millisecond), ago(p.End))
		if p.Error != "" {
			fmt.Fprintf(w, ": %s", p.Error)
		}
		fmt.Fprintln(w)
	}
	var conds []string
	for _, c := range st.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%v", c.Type, c.Status))
	}
	fmt.Fprintf(w, "conditions:  %s\n", strings.Join(conds, " "))
	printResources(w, st)
	printUptime(w, st, time.Now())
	if len(st.Drift) == 0 {
		fmt.Fprintln(w, "drift:       none")
		return
	}
	fmt.Fprintln(w, "drift:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SUBJECT\tFIELD\tLIVE\tDESIRED\tSINCE\tACTION")
	for _, d := range st.Drift {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", d.Subject, d.Field, d.Live, d.Desired, ago(d.Since), d.Action)
	}
	tw.Flush()
}

// writeOutput writes an agent's answer as -o asks: the JSON as the agent
// sent it, or text.
func writeOutput(out io.Writer, output string, raw []byte, text func(io.Writer)) error {
	switch output {
	case "json":
		_, err := out.Write(raw)
		return err
	case "text", "":
		text(termSafe(out))
		return nil
	default:
		return fmt.Errorf("-o %q: want text or json", output)
	}
}

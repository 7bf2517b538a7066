package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/desired/source"
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
		fmt.Fprintf(w, "revision:    %s %q by %s, in force since %s\n", source.Short(r.ID), r.Message, r.Author, ago(r.Since))
	} else {
		fmt.Fprintln(w, "revision:    none in force yet")
	}
	if f := st.FailedRevision; f != nil {
		fmt.Fprintf(w, "refused:     %s %q: %s\n", source.Short(f.ID), f.Message, f.Reason)
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
			fmt.Fprintf(w, "reverted:    back in force in place of %s\n", source.Short(r.Reverted))
		}
	}
	for _, q := range st.Quarantined {
		fmt.Fprintf(w, "quarantined: %s %q %s (since %s; release: reconciler quarantine release %s)\n",
			source.Short(q.ID), q.Message, q.Describe(), ago(q.At), source.Short(q.ID))
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

// showPass prints one pass of the agent at addr: `reconciler status --pass`.
func showPass(cmd *cobra.Command, addr, id, output, token string) error {
	raw, code, err := agentGet(cmd.Context(), addr, "/passes/"+url.PathEscape(id), token)
	if err != nil {
		return err
	}
	if code == http.StatusNotFound {
		return fmt.Errorf("agent at %s: %s", addr, strings.TrimSpace(string(raw)))
	}
	if code != http.StatusOK {
		return answerError(addr, "/passes/"+id, code, raw)
	}
	var d status.PassDetail
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("agent at %s: %w", addr, err)
	}
	if err := writeOutput(cmd.OutOrStdout(), output, raw, func(w io.Writer) { printPass(w, d) }); err != nil {
		return err
	}
	if r := d.Pass.Result; r != names.ResultConverged && r != names.ResultInSync {
		return exitCode(2)
	}
	return nil
}

// agentGet GETs one of the agent's endpoints, within 10 s.
func agentGet(ctx context.Context, addr, path, token string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return status.Get(ctx, addr, path, token)
}

// since writes t relative to the start of a pass: "+1.234s".
func since(start, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("+%.3fs", t.Sub(start).Seconds())
}

func printPass(w io.Writer, d status.PassDetail) {
	p := d.Pass
	fmt.Fprintf(w, "pass:      %s\n", p.ID)
	fmt.Fprintf(w, "revision:  %s\n", orNone(p.Revision))
	fmt.Fprintf(w, "trigger:   %s\n", p.Trigger)
	took := "running"
	if !p.End.IsZero() {
		took = p.End.Sub(p.Start).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "result:    %s (started %s, took %s)\n", p.Result, p.Start.Local().Format("2006-01-02 15:04:05.000"), took)
	if p.Error != "" {
		fmt.Fprintf(w, "error:     %s\n", strings.ReplaceAll(p.Error, "\n", "\n           "))
	}
	if len(p.Stages) > 0 {
		fmt.Fprintln(w, "stages:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  STAGE\tSTART\tTOOK\tTITLE")
		for _, s := range p.Stages {
			dur := "-"
			if !s.End.IsZero() {
				dur = s.End.Sub(s.Start).Round(time.Millisecond).String()
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", s.Number, since(p.Start, s.Start), dur, s.Title)
		}
		tw.Flush()
	}
	if len(p.Actions) == 0 {
		fmt.Fprintln(w, "actions:   none")
	} else {
		fmt.Fprintln(w, "actions:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  STAGE\tSUBJECT\tFIELD\tLIVE\tDESIRED\tACTION\tOUTCOME\tERROR")
		for _, a := range p.Actions {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Stage, a.Subject, a.Field, a.From, a.To, a.Op, a.Outcome, a.Error)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "events:    %d", len(d.Events))
	if d.EventsDropped > 0 {
		fmt.Fprintf(w, " (and %d more not kept)", d.EventsDropped)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, ev := range d.Events {
		var parts []string
		if ev.Field != "" || ev.From != "" || ev.To != "" {
			parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s %s -> %s", ev.Field, ev.From, ev.To)))
		}
		if ev.Message != "" {
			parts = append(parts, ev.Message)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", since(p.Start, ev.Time), ev.Type, ev.Subject, strings.Join(parts, ": "))
	}
	tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// printResources prints the services' last resource figures, if any.
func printResources(w io.Writer, st status.Status) {
	var objs []status.ObjectStatus
	for _, o := range st.Objects {
		if o.Resources != nil {
			objs = append(objs, o)
		}
	}
	if st.Monitor == nil {
		return
	}
	m := st.Monitor
	if m.Last == nil {
		fmt.Fprintf(w, "resources:   none collected yet (every %s)\n", m.Interval)
		return
	}
	calls := 0
	for _, n := range m.Last.Calls {
		calls += n
	}
	fmt.Fprintf(w, "resources:   collected %s, every %s (took %s, %.1f ms CPU, %d API calls, %d /proc reads)\n",
		ago(m.Last.At), m.Interval, time.Duration(m.Last.TookSeconds*float64(time.Second)).Round(time.Microsecond),
		m.Last.CPUSeconds*1000, calls, m.Last.ProcReads)
	for _, e := range m.Last.Errors {
		fmt.Fprintf(w, "               incomplete: %s\n", e)
	}
	if len(objs) == 0 {
		return
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Subject < objs[j].Subject })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVICE\tREPLICAS\tRSS\tVMS\tCPU\tPROCS\tTHREADS\tFILES\tCONNS\tSOURCE")
	for _, o := range objs {
		r := o.Resources
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%.2fs\t%d\t%d\t%d\t%d\t%s\n", o.Subject, r.Replicas, status.Bytes(r.MemoryBytes()),
			status.Bytes(r.VMSBytes), r.CPUSeconds, r.Processes, r.Threads, r.OpenFiles, r.Connections, r.Source)
	}
	tw.Flush()
}

// printUptime prints since when each object that runs has run, and each
// replica where its driver tells: svstat's uptime for every driver. Nothing
// when no object tells.
func printUptime(w io.Writer, st status.Status, now time.Time) {
	var objs []status.ObjectStatus
	for _, o := range st.Objects {
		if !o.Since.IsZero() {
			objs = append(objs, o)
		}
	}
	if len(objs) == 0 {
		return
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Subject < objs[j].Subject })
	up := func(t time.Time) string { return now.Sub(t).Truncate(time.Second).String() }
	fmt.Fprintln(w, "uptime:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SUBJECT\tSINCE\tUP\tREPLICAS")
	for _, o := range objs {
		names := make([]string, 0, len(o.ReplicasSince))
		for n := range o.ReplicasSince {
			names = append(names, n)
		}
		sort.Strings(names)
		reps := make([]string, 0, len(names))
		for _, n := range names {
			reps = append(reps, n+" "+up(o.ReplicasSince[n]))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", o.Subject, o.Since.UTC().Format(time.RFC3339), up(o.Since), orNone(strings.Join(reps, ", ")))
	}
	tw.Flush()
}

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

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

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

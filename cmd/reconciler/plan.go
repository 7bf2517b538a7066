package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/autoscale"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/source"
)

func newPlanCommand() *cobra.Command {
	var pf passFlags
	var output tableOrJSON
	cmd := &cobra.Command{
		Use:   "plan --source S [--host H]",
		Short: "Show what a pass would change, in order; change nothing",
		Long: `plan fetches the desired state, observes the live state of every declared
service and unit, and prints the ordered actions a pass would take: for each,
the stage, kind, name, field, live value, desired value and action
("report-only" for objects with drift: report, "missing" for declared objects
that do not exist). It changes nothing.

Exit status: 0 in sync, 2 drift (anything differs), 1 error (including an
invalid revision, printed as file:line:col: message).

-o json prints a stable document:
  {"host", "revision": {"id", "ref", "author", "message", "time"},
   "maintenance": {"active", "expired", "reason", "until"},
   "inSync", "actions": [{"stage", "phase", "subject", "kind", "name",
   "driver", "field", "live", "desired", "action", "mode", "note"}],
   "autoscale": [{"service", "queue", "ready", "consumers", "desired",
   "want", "min", "max", "reason", "error", "lastChange", "at"}],
   "selectors": [{"name", "driver", "select", "matched", "named"}]}

A selector entry (select:) is listed with the live services it matched, in
start order; a service it matched that an entry declares by name is shown as
such (that entry's settings win).

Autoscaled services are sized from their queue at the time of the plan: up
at once; down only when a running agent has seen the queue below the
threshold for the cooldown (a one-shot plan or apply holds the live count).

With --verify-signatures head or strict, a revision whose commit does not
carry a valid signature by an allowed key is refused (exit 1, naming the
commit and the key) before its files are read. A one-shot plan or apply has
no last applied revision: strict checks the head commit as head does, and
there is no anti-rollback check (that is the agent's, see run --help).

` + reachHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			one, err := planOnce(ctx, &pf)
			if err != nil {
				return err
			}
			defer one.w.close()
			snap, plan, scaled := one.snap, one.plan, one.w.autoscaler.Statuses()
			if err := output.write(cmd.OutOrStdout(), planDocOf(snap, plan, scaled), func(w io.Writer) {
				writePlanTable(w, snap, plan, scaled)
			}); err != nil {
				return err
			}
			if !plan.InSync() {
				return exitCode(2)
			}
			return nil
		},
	}
	pf.register(cmd.Flags())
	output.register(cmd.Flags())
	return cmd
}

// tableOrJSON is the -o of the commands that print a table for people and a
// JSON document for scripts, so that every one of them takes the same
// values and refuses others with the same words.
type tableOrJSON string

func (o *tableOrJSON) register(fs *pflag.FlagSet) {
	fs.StringVarP((*string)(o), "output", "o", "table", "output format: table or json")
}

// write prints doc as indented JSON for -o json, or the table for -o table;
// the table goes through termSafe, JSON does not (its encoder escapes).
func (o tableOrJSON) write(out io.Writer, doc any, table func(io.Writer)) error {
	switch o {
	case "json":
		return writeIndentedJSON(out, doc)
	case "table", "":
		table(termSafe(out))
		return nil
	default:
		return fmt.Errorf("-o %q: want table or json", string(o))
	}
}

// writeIndentedJSON writes v as JSON indented by two spaces, the form every
// -o json of the CLI prints.
func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// planDoc is the stable JSON form of a plan.
type planDoc struct {
	Host        string               `json:"host"`
	Revision    revisionDoc          `json:"revision"`
	Maintenance engine.Maintenance   `json:"maintenance"`
	InSync      bool                 `json:"inSync"`
	Actions     []controllers.Action `json:"actions"`
	Autoscale   []autoscale.Status   `json:"autoscale,omitempty"`
	// Selectors are what each selector entry matched.
	Selectors []controllers.Selection `json:"selectors,omitempty"`
}

type revisionDoc struct {
	ID      string `json:"id"`
	Ref     string `json:"ref,omitempty"`
	Author  string `json:"author,omitempty"`
	Message string `json:"message,omitempty"`
	Time    string `json:"time,omitempty"`
}

func revisionOf(r source.Revision) revisionDoc {
	d := revisionDoc{ID: r.ID, Ref: r.Ref, Author: r.Author, Message: r.Message}
	if !r.Time.IsZero() {
		d.Time = r.Time.UTC().Format("2006-01-02T15:04:05Z")
	}
	return d
}

// planDocOf is the -o json document of a plan.
func planDocOf(snap *desired.Snapshot, plan *engine.Plan, scaled []autoscale.Status) planDoc {
	doc := planDoc{
		Host: snap.Host, Revision: revisionOf(snap.Revision), Maintenance: plan.Maintenance,
		InSync: plan.InSync(), Actions: plan.Actions, Autoscale: scaled, Selectors: plan.Selectors,
	}
	if doc.Actions == nil {
		doc.Actions = []controllers.Action{}
	}
	return doc
}

func writePlanTable(w io.Writer, snap *desired.Snapshot, plan *engine.Plan, scaled []autoscale.Status) {
	fmt.Fprintf(w, "host %s at %s", snap.Host, source.Short(snap.Revision.ID))
	if snap.Revision.Message != "" {
		fmt.Fprintf(w, " (%s)", snap.Revision.Message)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "maintenance:", describeMaintenance(plan.Maintenance))
	// Autoscaled counts are not in git: show each decision and its inputs,
	// so a reviewer sees why.
	for _, st := range scaled {
		fmt.Fprintf(w, "autoscale: %s %d, queue %s: %d ready, %d consumers, bounds [%d, %d]: %s\n",
			st.Service, st.Desired, st.Queue, st.Ready, st.Consumers, st.Min, st.Max, st.Reason)
	}
	// What a selector manages is not in git: list it, so a reviewer sees
	// which live services a commit reaches.
	writeSelections(w, plan.Selectors)
	if plan.InSync() {
		fmt.Fprintln(w, "in sync: nothing to do")
		return
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tPHASE\tKIND\tNAME\tFIELD\tLIVE\tDESIRED\tACTION\tNOTE")
	reportOnly := 0
	for _, a := range plan.Actions {
		act := string(a.Op)
		if a.Mode == controllers.ReportOnly || a.Mode == controllers.Observed {
			act = string(a.Mode) + " (" + act + ")"
			reportOnly++
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Stage, a.Phase, a.Kind, a.Name, a.Field, a.From, a.To, act, a.Note)
	}
	tw.Flush()
	// Empty trailing cells (no note) leave padding behind: trim it, so lines
	// end where their text does.
	for _, line := range strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	fmt.Fprintf(w, "%d difference(s)", len(plan.Actions))
	if reportOnly > 0 {
		fmt.Fprintf(w, ", %d report-only", reportOnly)
	}
	fmt.Fprintln(w)
}

func describeMaintenance(m engine.Maintenance) string {
	var b strings.Builder
	switch {
	case m.Active:
		b.WriteString("on")
	case m.Expired:
		b.WriteString("off (the declared window expired")
		if m.Until != nil {
			b.WriteString(" at " + m.Until.UTC().Format("2006-01-02T15:04:05Z"))
		}
		b.WriteString(")")
	default:
		b.WriteString("off")
	}
	if m.Active && m.Until != nil {
		b.WriteString(" until " + m.Until.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if m.Reason != "" {
		b.WriteString(" (reason: " + m.Reason + ")")
	}
	return b.String()
}

// newAutoscaler sizes autoscaled services from their RabbitMQ queues.

// writeSelections lists each selector and what it matched, one service a
// line under it, in start order.
func writeSelections(w io.Writer, sels []controllers.Selection) {
	for _, s := range sels {
		fmt.Fprintf(w, "selector %s (%s, %s): %d matched\n", s.Name, s.Driver, s.Select, len(s.Matched))
		for _, m := range s.Matched {
			fmt.Fprintf(w, "  %s\n", m)
		}
		for _, m := range s.Named {
			fmt.Fprintf(w, "  %s (declared by name: its own entry wins)\n", m)
		}
	}
}

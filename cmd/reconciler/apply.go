package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/desired/source"
)

func newApplyCommand() *cobra.Command {
	var pf passFlags
	var concurrency int
	cmd := &cobra.Command{
		Use:   "apply --source S [--host H]",
		Short: "Run one pass: converge the host to the desired state, in order",
		Long: `apply runs one pass: it plans as "plan" does, then carries the plan out
stage by stage, showing progress on stderr as it goes (stage, object,
live -> desired, waiting for ready or drained), and a summary.

Down first: units with maintenance: stop are stopped and disabled, then
services shrink in reverse dependsOn order, each stage drained before the
next. Then up: services grow in dependsOn order, each stage ready (and its
probe passing) before the next; units come back last. A stage that fails
blocks what depends on it; every failure is reported with its object.

Exit status: 0 when everything converged and is ready, 1 otherwise.

--verify-signatures head or strict: only a revision whose commit carries a
valid signature by an allowed key is applied; strict means head here, a
one-shot apply having no last applied revision (see plan --help).

` + reachHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			one, err := planOnce(ctx, &pf)
			if err != nil {
				return err
			}
			defer one.w.close()
			snap, plan, eng := one.snap, one.plan, one.w.engine
			eng.Concurrency = concurrency
			stderr := termSafe(cmd.ErrOrStderr())
			fmt.Fprintf(stderr, "host %s at %s, maintenance %s: %d action(s) in %d stage(s)\n",
				snap.Host, source.Short(snap.Revision.ID), describeMaintenance(plan.Maintenance), len(plan.Actions), len(plan.Stages))
			res := eng.Apply(engine.WithScope(ctx, engine.Scope{Progress: progressPrinter(stderr, len(plan.Stages))}), plan)
			fmt.Fprintf(stderr, "summary: %d applied, %d reported only, %d failed, in %s\n",
				len(res.Applied), len(res.Reported), len(res.Failures), time.Since(start).Round(10*time.Millisecond))
			for _, a := range res.Reported {
				fmt.Fprintf(stderr, "  drift %s: %s %s -> %s (%s, %s)\n", a.Subject, a.Field, a.From, a.To, a.Op, a.Mode)
			}
			if err := res.Err(); err != nil {
				return &exitError{code: 1, err: err}
			}
			if !res.Converged() {
				return &exitError{code: 1, err: fmt.Errorf("not converged: declared objects are missing")}
			}
			fmt.Fprintln(stderr, "converged")
			return nil
		},
	}
	pf.register(cmd.Flags())
	cmd.Flags().IntVar(&concurrency, "concurrency", 4, "most actions at once within a stage")
	return cmd
}

// progressPrinter shows a pass as it goes, one line per step.
func progressPrinter(w io.Writer, stages int) func(engine.Event) {
	return func(ev engine.Event) {
		switch ev.Type {
		case names.EventStage:
			fmt.Fprintf(w, "[stage %d/%d] %s\n", ev.Stage, stages, ev.Message)
		case names.EventAction:
			fmt.Fprintf(w, "  %s %s %s -> %s (%s)\n", ev.Subject, ev.Field, ev.From, ev.To, ev.Message)
		case names.EventWaiting:
			fmt.Fprintf(w, "  %s: waiting: %s\n", ev.Subject, ev.Message)
		case names.EventReady, names.EventDrained:
			if ev.Stage > 0 {
				fmt.Fprintf(w, "  %s: %s\n", ev.Subject, ev.Type)
			}
		case names.EventFailed, names.EventBlocked:
			fmt.Fprintf(w, "  %s: %s: %s\n", ev.Subject, ev.Type, ev.Message)
		case names.EventTrigger:
			fmt.Fprintf(w, "  %s: trigger: %s\n", ev.Subject, ev.Message)
		}
	}
}

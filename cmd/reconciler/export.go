package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers/export"
	"reconciler.dev/reconciler/desired"
)

func newExportCommand() *cobra.Command {
	var (
		host              string
		selects           []string
		supervisorSockets []string
		svscanDirs        []string
		check             bool
	)
	cmd := &cobra.Command{
		Use:   "export [--host H] [--select GLOBS]",
		Short: "Print what runs on this host as a Host document, to commit as a starting point",
		Long: `export reads the live state of what the reconciler can manage on this host
and prints it as a Host document (apiVersion reconciler.dev/v1), sorted, so
the same live state always prints the same bytes:

  - Swarm services: name, replicas and image (the tag; a pinned digest is
    left out). Global services have no count and are left out.
  - systemd: timers that are enabled or active (enabled written only for
    unit files that can be enabled), running numbered instances of
    templates as a service with driver systemd and a replica count
    (usm-poller@1..3 is {name: usm-poller, unit: usm-poller@.service,
    replicas: 3}), and other units when a --select glob that ends in a
    unit type (".service", ".target"...) names them.
  - supervisord: every program group of every --supervisor-socket, with the
    count of its processes that run.
  - daemontools and runit: every service folder under each --svscan-dir,
    up (replicas 1), run once (replicas 1, once: true) or down (0).

--select narrows it to objects whose name matches one of the globs
(path.Match: *, ?, [a-z]); give it comma-separated or more than once.

Each object is written the way its driver reads it back, so a plan of the
document finds nothing to change. Where the live state has no exact
declaration (instances 2 and 5 of a template, a service up with a down
file), a note says so, at the top of the document and on stderr; with
--check (the default) export also plans the document against the live
state and notes every difference. The document is validated before it is
printed. Dependencies, probes and maintenance policies are not visible live:
add them before committing.

Exit status: 0 printed; 1 when a source that is there could not be read (the
document holds the rest). Sources that are not there (no supervisord on the
socket, no svscan folder, no swarm) are skipped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if host == "" {
				h, err := os.Hostname()
				if err != nil {
					return fmt.Errorf("--host not given and the OS host name is unknown: %w", err)
				}
				host = h
			}
			w, err := newWiring()
			if err != nil {
				return err
			}
			defer w.close()
			eng := w.engine
			r := w.exporter()
			r.SupervisorSockets, r.SvscanDirs, r.Select = supervisorSockets, svscanDirs, selects
			live, probs := r.Read(ctx)
			stderr := cmd.ErrOrStderr()
			failed := false
			for _, p := range probs {
				if p.Absent {
					fmt.Fprintf(stderr, "export: skipped %s (not there: %v)\n", p.Source, p.Err)
					continue
				}
				failed = true
				fmt.Fprintf(stderr, "export: could not read %s: %v\n", p.Source, p.Err)
			}
			h, notes := export.Build(live, export.Options{Host: host, Select: selects})
			b, eff, err := marshalValid(h, nil)
			if err != nil {
				return err
			}
			if check {
				plan, err := eng.Plan(ctx, &eff.Spec)
				if err != nil {
					fmt.Fprintf(stderr, "export: could not check the document against the live state: %v\n", err)
				} else {
					for _, a := range plan.Actions {
						notes = append(notes, fmt.Sprintf("a plan of this document would change %s %s: %s -> %s (%s)", a.Subject, a.Field, a.From, a.To, a.Op))
					}
				}
			}
			header := []string{
				fmt.Sprintf("What runs on %s, as `reconciler export` read it (services: %d, units: %d).", host, len(h.Spec.Services), len(h.Spec.Units)),
				"A starting point: add dependsOn, ready probes and maintenance policies, then review and commit it.",
			}
			if len(selects) > 0 {
				header = append(header, "Selected: "+strings.Join(selects, ", "))
			}
			for _, n := range notes {
				header = append(header, "note: "+n)
				fmt.Fprintln(stderr, "export: note:", n)
			}
			if b, _, err = marshalValid(h, header); err != nil {
				return err
			}
			if _, err := cmd.OutOrStdout().Write(b); err != nil {
				return err
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "metadata.name of the document (default: the OS host name)")
	cmd.Flags().StringSliceVar(&selects, "select", nil, "export only objects whose name matches one of these globs (comma-separated, or repeat the flag)")
	cmd.Flags().StringSliceVar(&supervisorSockets, "supervisor-socket", []string{v1.DefaultSupervisorSocket}, "supervisord sockets to read (comma-separated, or repeat the flag)")
	cmd.Flags().StringSliceVar(&svscanDirs, "svscan-dir", []string{v1.DefaultDaemontoolsRoot}, "folders of daemontools (or runit) service folders to read (comma-separated, or repeat the flag)")
	cmd.Flags().BoolVar(&check, "check", true, "plan the document against the live state and note every difference")
	return cmd
}

// marshalValid writes h as YAML and loads it back the way validate and the
// agent do: a document export prints always validates.
func marshalValid(h *v1.Host, comments []string) ([]byte, *desired.Effective, error) {
	b, err := export.Marshal(h, comments)
	if err != nil {
		return nil, nil, err
	}
	const name = "export.yaml"
	repo, err := desired.LoadFiles([]string{name}, func(string) ([]byte, error) { return b, nil })
	if err != nil {
		return nil, nil, err
	}
	errs := repo.Validate()
	var eff *desired.Effective
	if len(errs) == 0 {
		var herrs v1.ErrorList
		eff, herrs = repo.Effective(h.Metadata.Name)
		errs = append(errs, herrs...)
	}
	if len(errs) > 0 {
		if !v1.ValidHostName(h.Metadata.Name) {
			return nil, nil, fmt.Errorf("%q is not a valid host name (RFC 1123): give one with --host", h.Metadata.Name)
		}
		return nil, nil, fmt.Errorf("the exported document does not validate (a bug; please report it):\n%v\n%s", errs, b)
	}
	return b, eff, nil
}

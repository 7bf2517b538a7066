package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/source"
)

func newDiffCommand() *cobra.Command {
	var sf sourceFlags
	var base, head, hosts, output string
	cmd := &cobra.Command{
		Use:   "diff --source S --base REF --head REF [--hosts GLOB]",
		Short: "Show what a branch changes in every host's effective desired state; no live access",
		Long: `diff fetches two revisions of the desired-state repository (--base, usually
the followed branch, and --head, usually a pull request's branch or commit),
merges every host's effective state in each (Defaults under Host, defaults
filled in) and prints, per host, the fields that change (old -> new), and the
hosts that appear or disappear. It never talks to a live system: it is what a
reviewer, or a pipeline commenting on a pull request, needs.

The hosts compared are every host a document of either revision names (Host
documents, and plain names in a Defaults' hosts list; a pattern such as fp-*
selects among those), narrowed by --hosts GLOB.

The head's validation errors are printed as file:line:col: message.

Exit status: 0 no host changes, 2 some host changes, 1 the head is invalid
(or a revision could not be fetched).

-o table (default), -o json: {"base", "head": {"id", "ref", "author",
"message", "time"}, "changed", "hosts": [{"host", "change", "fields":
[{"field", "old", "new", "oldAbsent", "newAbsent"}]}], "headErrors"},
-o markdown: a pull request comment.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base == "" || head == "" {
				return fmt.Errorf("--base and --head are both required")
			}
			switch output {
			case "table", "", "json", "markdown":
			default:
				return fmt.Errorf("-o %q: want table, json or markdown", output)
			}
			ctx := cmd.Context()
			baseRepo, baseRev, err := loadRevision(ctx, sf, base)
			if err != nil {
				return err
			}
			headRepo, headRev, err := loadRevision(ctx, sf, head)
			if err != nil {
				return err
			}
			res, err := desired.Diff(baseRepo, headRepo, hosts)
			if err != nil {
				return err
			}
			rep := diffReport{Base: revJSON(baseRev), Head: revJSON(headRev), Changed: res.Changed(), DiffResult: res}
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				err = writeIndentedJSON(out, rep)
			case "markdown":
				writeDiffMarkdown(out, &rep, base, head)
			default:
				writeDiffTable(out, &rep)
			}
			if err != nil {
				return err
			}
			switch {
			case len(res.HeadErrors) > 0:
				return exitCode(1)
			case res.Changed():
				return exitCode(2)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sf.source, "source", "", "the desired-state git repository (URL; required)")
	cmd.Flags().StringVar(&base, "base", "", "branch, tag or commit to compare against (required)")
	cmd.Flags().StringVar(&head, "head", "", "branch, tag or commit whose changes to show (required)")
	cmd.Flags().StringVar(&hosts, "hosts", "", "only hosts whose name matches this glob (default: every host a document names or selects)")
	cmd.Flags().StringVar(&sf.path, "path", "", "folder inside the repository holding the documents")
	sf.registerFetch(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or markdown")
	return cmd
}

// loadRevision fetches one ref of the source and loads its documents.
func loadRevision(ctx context.Context, sf sourceFlags, ref string) (*desired.Repo, source.Revision, error) {
	sf.ref = ref
	src, err := sf.open()
	if err != nil {
		return nil, source.Revision{}, err
	}
	art, _, err := src.Fetch(ctx)
	if err != nil {
		return nil, source.Revision{}, fmt.Errorf("fetching %s: %w", ref, err)
	}
	repo, err := desired.Load(art.FS, strings.Trim(sf.path, "/"))
	if err != nil {
		return nil, source.Revision{}, err
	}
	return repo, art.Revision, nil
}

type diffRevision struct {
	ID      string `json:"id"`
	Ref     string `json:"ref"`
	Author  string `json:"author"`
	Message string `json:"message"`
	Time    string `json:"time"`
}

func revJSON(r source.Revision) diffRevision {
	return diffRevision{ID: r.ID, Ref: r.Ref, Author: r.Author, Message: r.Message, Time: r.Time.UTC().Format("2006-01-02T15:04:05Z")}
}

type diffReport struct {
	Base    diffRevision `json:"base"`
	Head    diffRevision `json:"head"`
	Changed bool         `json:"changed"`
	*desired.DiffResult
}

func fieldValues(f desired.FieldChange) (string, string) {
	o, n := f.Old, f.New
	if f.OldAbsent {
		o = "(absent)"
	}
	if f.NewAbsent {
		n = "(absent)"
	}
	return o, n
}

func writeDiffTable(w io.Writer, r *diffReport) {
	fmt.Fprintf(w, "base %s  head %s\n", source.Short(r.Base.ID), source.Short(r.Head.ID))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tCHANGE\tFIELD\tOLD\tNEW")
	n := 0
	for _, h := range r.Hosts {
		if h.Change == desired.ChangeNone {
			continue
		}
		n++
		for _, f := range h.Fields {
			o, nv := fieldValues(f)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Host, h.Change, f.Field, o, nv)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d hosts change\n", n, len(r.Hosts))
	writeHeadErrors(w, r, "")
}

func writeHeadErrors(w io.Writer, r *diffReport, prefix string) {
	if len(r.HeadErrors) == 0 {
		return
	}
	fmt.Fprintf(w, "%shead is invalid: %d error(s)\n", prefix, len(r.HeadErrors))
	for _, e := range r.HeadErrors {
		fmt.Fprintf(w, "%s%s\n", prefix, e)
	}
}

// mdCell escapes what would break a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func writeDiffMarkdown(w io.Writer, r *diffReport, base, head string) {
	changed := 0
	for _, h := range r.Hosts {
		if h.Change != desired.ChangeNone {
			changed++
		}
	}
	fmt.Fprintf(w, "### reconciler diff `%s` (%s) → `%s` (%s)\n\n", mdCell(base), source.Short(r.Base.ID), mdCell(head), source.Short(r.Head.ID))
	fmt.Fprintf(w, "**%d of %d hosts change.**\n", changed, len(r.Hosts))
	for _, h := range r.Hosts {
		if h.Change == desired.ChangeNone {
			continue
		}
		fmt.Fprintf(w, "\n#### `%s` (%s)\n\n| field | old | new |\n|---|---|---|\n", mdCell(h.Host), h.Change)
		for _, f := range h.Fields {
			o, n := fieldValues(f)
			fmt.Fprintf(w, "| `%s` | `%s` | `%s` |\n", mdCell(f.Field), mdCell(o), mdCell(n))
		}
	}
	if len(r.HeadErrors) > 0 {
		fmt.Fprintf(w, "\n#### :x: head is invalid (%d error(s))\n\n```\n", len(r.HeadErrors))
		for _, e := range r.HeadErrors {
			fmt.Fprintln(w, e)
		}
		fmt.Fprintln(w, "```")
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	k8syaml "sigs.k8s.io/yaml"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
)

func newValidateCommand() *cobra.Command {
	var host, output string
	var sf sourceFlags
	cmd := &cobra.Command{
		Use:   "validate [PATH...] | validate --source URL [--ref R] [--path P]",
		Short: "Check desired-state files; print every error as file:line:col: message",
		Long: `validate reads every *.yaml/*.yml file in the given folders (recursively, in
path order) and files, default ".", and checks them all: syntax, unknown fields,
types, duplicate names, dependsOn references and cycles, bounds, and the merged
state of every declared host. It prints every problem, not just the first, as
file:line:col: message.

Exit status: 0 valid, 1 invalid (or unreadable).

With --source it validates a revision of a git repository instead (the same
URLs, --ref and --path as plan and apply), as a pipeline or an operator would
before merging; with --verify-signatures head (or strict, the same here) its
commit must also carry a valid signature by a key of --allowed-signers-file
or --gpg-keyring-file.

With --host NAME it also prints that host's effective state (Defaults merged
under its Host, defaults filled in) as YAML.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var repo *desired.Repo
			var err error
			if m, _ := trust.ParseMode(sf.trust.verify); sf.source == "" && (m != trust.ModeOff || sf.trust.allowedSigners != "" || sf.trust.gpgKeyring != "") {
				return fmt.Errorf("--verify-signatures, --allowed-signers-file and --gpg-keyring-file check commits: they need --source")
			}
			if sf.source != "" {
				if len(args) > 0 {
					return fmt.Errorf("give folders or --source, not both")
				}
				repo, err = loadSource(cmd.Context(), &sf)
			} else {
				if len(args) == 0 {
					args = []string{"."}
				}
				repo, err = loadPaths(cmd.Context(), args, sf.limits)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			errs := repo.Validate()
			var eff *desired.Effective
			if host != "" && len(errs) == 0 {
				var herrs v1.ErrorList
				eff, herrs = repo.Effective(host)
				errs = append(errs, herrs...).Sorted()
			}
			if output == "json" {
				return validateJSON(out, repo, errs, eff)
			}
			if len(errs) > 0 {
				for _, e := range errs {
					fmt.Fprintln(termSafe(out), e)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d error(s)\n", errs.Total())
				return exitCode(1)
			}
			h, s, u := repo.Summary()
			if eff != nil {
				if err := printEffective(out, eff); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d hosts, %d services, %d units: valid\n", h, s, u)
				return nil
			}
			fmt.Fprintf(out, "%d hosts, %d services, %d units: valid\n", h, s, u)
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "also print this host's effective state as YAML")
	cmd.Flags().StringVar(&sf.source, "source", "", "validate a git repository (URL) instead of local paths")
	cmd.Flags().StringVar(&sf.ref, "ref", "", "with --source: branch, tag or commit (default: the remote's HEAD branch)")
	cmd.Flags().StringVar(&sf.path, "path", "", "with --source: folder inside the repository")
	sf.registerFetch(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	sf.trust.register(cmd.Flags()) // with --source: refuse a commit not signed by an allowed key
	sf.limits.register(cmd.Flags())
	return cmd
}

// loadSource fetches a revision and loads it; positions name files inside
// the repository (under --path when given).
func loadSource(ctx context.Context, sf *sourceFlags) (*desired.Repo, error) {
	src, err := sf.open()
	if err != nil {
		return nil, err
	}
	res, err := sf.trust.resolve(ctx, src, "", sf.limits.parse)
	if err != nil {
		return nil, err
	}
	return desired.LoadLimited(res.Artifact.FS, strings.Trim(sf.path, "/"), sf.limits.parse)
}

// loadPaths loads folders and files into one repo, in the order given. A
// folder is read as a folder source reads it, and a file as a file of its
// folder: confined (no link leads out), regular files only, never
// blocking, sizes checked before reading.
func loadPaths(ctx context.Context, paths []string, lim limitFlags) (*desired.Repo, error) {
	all := &desired.Repo{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		var r *desired.Repo
		if st.IsDir() {
			src, err := source.Open(source.Options{URL: p, Limits: lim.src})
			if err != nil {
				return nil, err
			}
			art, _, err := src.Fetch(ctx)
			if err != nil {
				return nil, err
			}
			r, err = desired.LoadLimited(art.FS, p, lim.parse)
			if err != nil {
				return nil, err
			}
		} else {
			b, err := source.ReadFile(p, lim.src)
			if err != nil {
				return nil, err
			}
			r, err = desired.LoadFilesLimited([]string{p}, func(string) ([]byte, error) { return b, nil }, lim.parse)
			if err != nil {
				return nil, err
			}
		}
		all.Merge(r)
	}
	return all, nil
}

// effectiveHost is what an effective state prints as: a Host document an
// operator could commit as it is.
func effectiveHost(eff *desired.Effective) v1.Host {
	return v1.Host{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindHost},
		Metadata: v1.ObjectMeta{Name: eff.Host, Labels: eff.Labels},
		Spec:     eff.Spec,
	}
}

func printEffective(w io.Writer, eff *desired.Effective) error {
	b, err := k8syaml.Marshal(effectiveHost(eff))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# effective state of host %s, merged from:\n", eff.Host)
	for _, s := range eff.Sources {
		fmt.Fprintf(w, "#   %s\n", s)
	}
	_, err = w.Write(b)
	return err
}

// validateJSON is the -o json form: {"valid", "errors", "hosts", ...}.
func validateJSON(w io.Writer, repo *desired.Repo, errs v1.ErrorList, eff *desired.Effective) error {
	h, s, u := repo.Summary()
	res := struct {
		Valid     bool         `json:"valid"`
		Errors    v1.ErrorList `json:"errors"`
		Hosts     int          `json:"hosts"`
		Services  int          `json:"services"`
		Units     int          `json:"units"`
		Effective *v1.Host     `json:"effective,omitempty"`
		Origins   v1.Origins   `json:"origins,omitempty"`
	}{Valid: len(errs) == 0, Errors: errs, Hosts: h, Services: s, Units: u}
	if res.Errors == nil {
		res.Errors = v1.ErrorList{}
	}
	if eff != nil {
		hd := effectiveHost(eff)
		res.Effective, res.Origins = &hd, eff.Origins
	}
	if err := writeIndentedJSON(w, res); err != nil {
		return err
	}
	if !res.Valid {
		return exitCode(1)
	}
	return nil
}

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/user"

	"github.com/spf13/cobra"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/desired/source"
)

func newQuarantineCommand() *cobra.Command {
	return newGroupCommand("quarantine", "Revisions that did not become healthy in time (see run --healthy-within)",
		`A revision that validates but whose passes do not reach converged and ready
within the agent's --healthy-within is quarantined: the last healthy revision
goes back in force and the quarantined one is never tried again. A newer
commit is tried normally. `+"`reconciler status`"+` lists the quarantined revisions.`,
		newQuarantineReleaseCommand())
}

func newQuarantineReleaseCommand() *cobra.Command {
	var listen, tokenFile string
	cmd := &cobra.Command{
		Use:   "release REVISION [--listen ADDR]",
		Short: "Let the agent try a quarantined revision again",
		Long: `release asks the agent on --listen to forget the quarantine of REVISION (a
commit id or a unique prefix). When it is still the head of the ref the agent
follows, the next pass (at once) takes it into force, on trial like any new
revision. The agent logs and raises an event (quarantine-released) naming
who asked.

Exit status: 0 released, 1 when the agent cannot be reached or holds no such
revision in quarantine.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := agent.ReadToken(tokenFile)
			if err != nil {
				return err
			}
			by := "reconciler quarantine release"
			if u, err := user.Current(); err == nil {
				by += " (user " + u.Username + ")"
			}
			body, _ := json.Marshal(agent.ReleaseRequest{Revision: args[0], By: by})
			raw, code, err := status.PostJSON(cmd.Context(), listen, "/quarantine/release", token, body)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return answerError(listen, "/quarantine/release", code, raw)
			}
			var q status.QuarantinedRevision
			if err := json.Unmarshal(raw, &q); err != nil {
				return fmt.Errorf("agent at %s: %w", listen, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "released %s (quarantined %s: %s); the agent tries it again when it is the head of its ref\n",
				source.Short(q.ID), q.At.UTC().Format("2006-01-02 15:04:05Z"), q.Describe())
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9440", "address of the agent")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the agent's bearer token (its --token-file), sent as Authorization: Bearer")
	return cmd
}

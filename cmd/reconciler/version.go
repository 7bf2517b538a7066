package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"reconciler.dev/reconciler/internal/version"
)

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the git commit it was built from, the build date and the Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			switch output {
			case "json":
				return writeIndentedJSON(cmd.OutOrStdout(), info)
			case "", "text":
				_, err := fmt.Fprintln(cmd.OutOrStdout(), info)
				return err
			default:
				return fmt.Errorf("-o %q: want text or json", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

package main

import (
	"github.com/spf13/cobra"

	v1 "reconciler.dev/reconciler/api/v1"
)

func newSchemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the desired-state documents, for editors",
		Long: `schema prints the JSON Schema (draft 2020-12) of one desired-state document,
a Host or a Defaults told apart by kind, with a description for every field.
Point an editor's YAML support at it, for example with a first line

  # yaml-language-server: $schema=./reconciler.schema.json

after reconciler schema > reconciler.schema.json. The schema checks the shape
of each document (no unknown fields, types, enums, bounds); what needs the
whole repository (dependsOn targets, cycles, duplicates, merging) is checked
by reconciler validate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(v1.Schema())
			return err
		},
	}
}

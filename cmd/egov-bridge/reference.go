package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/egov-bridge/egov-bridge/pipeline/reference"
)

func (a *app) docsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "docs [--root DIR]",
		Short: "write the reference pages (" + reference.DocsDir + ") and JSON Schemas (" + reference.SchemaDir + ") from the code's specs",
		Long: "Writes " + reference.DocsDir + "/ (one page per source, sink, transform, type and mapping key) and\n" +
			reference.SchemaDir + "/ (the config and mapping JSON Schemas) under DIR, the repository's root,\n" +
			"and removes pages that are no longer generated. Run it after changing an option.",
		Args: cobra.NoArgs,
	}
	root := cmd.Flags().String("root", ".", "the repository's root")
	cmd.RunE = action(func([]string) int {
		changed, err := reference.Write(*root)
		for _, p := range changed {
			fmt.Fprintln(a.stdout, "wrote", p)
		}
		if err != nil {
			fmt.Fprintln(a.stderr, "egov-bridge:", err)
			return exitFailed
		}
		fmt.Fprintf(a.stdout, "%d files changed\n", len(changed))
		return exitOK
	})
	return cmd
}

func (a *app) schemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:       "schema (config|mapping|test)",
		Short:     "print the JSON Schema of the config file, of mapping files or of mapping test files",
		Long:      "Prints the JSON Schema editors use for completion and hover help; the committed copies are in " + reference.SchemaDir + "/.",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"config", "mapping", "test"},
		RunE: action(func(args []string) int {
			schemas, err := reference.Schemas()
			if err != nil {
				fmt.Fprintln(a.stderr, "egov-bridge:", err)
				return exitFailed
			}
			name := map[string]string{"config": reference.ConfigSchemaFile, "mapping": reference.MappingSchemaFile,
				"test": reference.MappingTestSchemaFile}[args[0]]
			_, _ = a.stdout.Write(schemas[name])
			return exitOK
		}),
	}
}

func (a *app) connectorsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "connectors",
		Short: "list the source and sink types with what each does",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KIND\tTYPE\tWHAT")
			for _, c := range reference.Connectors() {
				fmt.Fprintf(w, "%s\t%s\t%s\n", c.Kind, c.Name, c.Summary)
			}
			w.Flush()
			fmt.Fprintf(a.stdout, "\nOptions of each: %s/\n", reference.DocsDir)
		},
	}
}

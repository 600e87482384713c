package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/egov-bridge/egov-bridge/pipeline/mappingtest"
)

func (a *app) testCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test [-v] [PATH ...]",
		Short: "run the mapping test cases (*" + mappingtest.Suffix + "; default: mappings)",
		Long:  "Runs the mapping test cases (*" + mappingtest.Suffix + ") under each PATH (default: mappings).",
		Args:  cobra.ArbitraryArgs,
	}
	verbose := cmd.Flags().BoolP("verbose", "v", false, "list passing cases too")
	cmd.RunE = action(func(args []string) int { return runTests(args, *verbose, a.stdout, a.stderr) })
	return cmd
}

func runTests(paths []string, verbose bool, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		paths = []string{"mappings"}
	}
	files, err := mappingtest.Find(paths)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "egov-bridge: no test files (*%s) under %v\n", mappingtest.Suffix, paths)
		return 1
	}
	passed, failed, broken := 0, 0, 0
	for _, f := range files {
		results, err := mappingtest.RunFile(f)
		if err != nil {
			broken++
			fmt.Fprintf(stdout, "ERROR %s\n", f)
			printConfigErrors(err, stdout)
			continue
		}
		filePassed := 0
		for _, r := range results {
			if r.Passed() {
				passed++
				filePassed++
				if verbose {
					fmt.Fprintf(stdout, "PASS  %s:%d %s\n", r.File, r.Line, r.Name)
				}
				continue
			}
			failed++
			fmt.Fprintf(stdout, "FAIL  %s:%d %s\n", r.File, r.Line, r.Name)
			for _, line := range r.Diff {
				fmt.Fprintf(stdout, "        %s\n", line)
			}
		}
		if !verbose && filePassed == len(results) {
			fmt.Fprintf(stdout, "ok    %s (%d cases)\n", f, len(results))
		}
	}
	if broken > 0 {
		fmt.Fprintf(stdout, "%d test files could not be loaded\n", broken)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed+broken)
	if failed > 0 || broken > 0 {
		return 1
	}
	return 0
}

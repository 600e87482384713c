// Command egov-bridge is the integration daemon between a province's agency systems
// and its Zalo Official Account and dashboards.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // Asia/Ho_Chi_Minh must resolve on machines without a zoneinfo database

	"github.com/spf13/cobra"

	_ "github.com/egov-bridge/egov-bridge/connectors/evnspc"
	_ "github.com/egov-bridge/egov-bridge/connectors/filesource"
	_ "github.com/egov-bridge/egov-bridge/connectors/httpfeed"
	_ "github.com/egov-bridge/egov-bridge/connectors/logsink"
	_ "github.com/egov-bridge/egov-bridge/connectors/natssink"
	_ "github.com/egov-bridge/egov-bridge/connectors/pgtable"
	_ "github.com/egov-bridge/egov-bridge/connectors/sqlsource"
	_ "github.com/egov-bridge/egov-bridge/connectors/webhook"
	_ "github.com/egov-bridge/egov-bridge/connectors/zalo"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes, documented in the README.
const (
	exitOK     = 0 // done; for validate and test: everything passed
	exitFailed = 1 // the command ran and failed: a bad config, a failed test, an unreachable store
	exitUsage  = 2 // the command line is wrong: an unknown command, flag or argument
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries a command's exit code through cobra.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// app is what every command shares: the context and the output streams, which
// tests replace.
type app struct {
	ctx            context.Context
	stdout, stderr io.Writer
	// now is the clock of commands whose outcome depends on the hour (a ZNS
	// send waits out quiet hours); tests set it.
	now func() time.Time
}

// action adapts a command body that returns an exit code to cobra.
func action(body func(args []string) int) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		if code := body(args); code != exitOK {
			return exitError(code)
		}
		return nil
	}
}

// run is main without the process: tests call it directly.
func run(args []string, stdout, stderr io.Writer) int {
	return runAt(time.Now, args, stdout, stderr)
}

// runAt is run on the clock now.
func runAt(now func() time.Time, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{ctx: ctx, stdout: stdout, stderr: stderr, now: now}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var code exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	}
	// cobra's own errors are about the command line: unknown commands, flags and
	// arguments, missing values.
	fmt.Fprintf(stderr, "egov-bridge: %v\n", err)
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	return exitUsage
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "egov-bridge",
		Short: "syncs agency systems into change events for Zalo OA and dashboards",
		Long: `egov-bridge syncs a province's agency systems into change events and delivers them
to citizens on Zalo OA, to dashboards, webhooks, PostgreSQL tables and NATS.

Exit codes: 0 done, 1 the command failed (a bad config, a failed test, a store
that cannot be opened), 2 the command line is wrong.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		// Without a command: the help, on stderr, as a usage error.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.stderr)
			_ = cmd.Help()
			return exitError(exitUsage)
		},
	}
	root.SetVersionTemplate("egov-bridge {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddCommand(
		a.runCmd(),
		a.validateCmd(),
		a.testCmd(),
		a.previewCmd(),
		a.stateCmd(),
		a.replayCmd(),
		a.quarantineCmd(),
		a.zaloCmd(),
		a.announceCmd(),
		a.connectorsCmd(),
		a.initCmd(),
		a.docsCmd(),
		a.schemaCmd(),
		&cobra.Command{
			Use:   "version",
			Short: "print the version",
			Args:  cobra.NoArgs,
			Run:   func(*cobra.Command, []string) { fmt.Fprintf(a.stdout, "egov-bridge %s\n", version) },
		},
	)
	forEach(root, func(c *cobra.Command) { c.DisableFlagsInUseLine = true }) // each Use spells its flags
	return root
}

// forEach calls f on cmd and every command under it.
func forEach(cmd *cobra.Command, f func(*cobra.Command)) {
	f(cmd)
	for _, c := range cmd.Commands() {
		forEach(c, f)
	}
}

// configNames completes a flag or argument with the names of the config's sources
// (or sinks): the config named by -c, or the checkout's demo.
func configNames(cfgFlag *string, sinks bool) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		path := *cfgFlag
		if path == "" {
			path = demoConfig
		}
		cfg, err := engine.LoadFile(path)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		if sinks {
			for _, s := range cfg.Sinks {
				names = append(names, s.Name)
			}
		} else {
			for _, s := range cfg.Sources {
				names = append(names, s.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// configFlag adds -c/--config to a command (persistent: its subcommands share it).
func configFlag(cmd *cobra.Command, persistent bool) *string {
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	return fs.StringP("config", "c", "", "config file (default: the embedded demo, "+demoConfig+")")
}

// Command egov-bridge is the integration daemon between a province's agency systems
// and its Zalo Official Account and dashboards.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // Asia/Ho_Chi_Minh must resolve on machines without a zoneinfo database

	_ "github.com/egov-bridge/egov-bridge/connectors/evnspc"
	_ "github.com/egov-bridge/egov-bridge/connectors/file"
	_ "github.com/egov-bridge/egov-bridge/connectors/httpfeed"
	_ "github.com/egov-bridge/egov-bridge/connectors/logsink"
	_ "github.com/egov-bridge/egov-bridge/connectors/nats"
	_ "github.com/egov-bridge/egov-bridge/connectors/pgtable"
	_ "github.com/egov-bridge/egov-bridge/connectors/sql"
	_ "github.com/egov-bridge/egov-bridge/connectors/webhook"
	_ "github.com/egov-bridge/egov-bridge/connectors/zalo"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `egov-bridge — syncs agency systems into change events for Zalo OA and dashboards.

Usage:
  egov-bridge run [-c FILE] [--once]    run the daemon (default config: the embedded demo)
  egov-bridge validate [-c FILE]        check a config and its mappings; every mistake with file:line
  egov-bridge test [-v] [PATH ...]      run the mapping test cases (*.test.yaml; default: mappings)
  egov-bridge preview -c FILE --source NAME [--limit N] [--json]
                                        read a source once, commit nothing, show records, events
                                        and messages that would be sent, and quarantine reasons
  egov-bridge state [-c FILE]           cursors, outbox depth, dead letters, quarantine
  egov-bridge state reset-cursor -c FILE SOURCE
                                        re-read SOURCE from the start on its next run
  egov-bridge state audit [-c FILE]     operator actions (resets, replays, reprocessing)
  egov-bridge replay -c FILE [--sink NAME] [--id N,…] [--since T] [--until T] [--dry-run]
                                        move dead letters back into the outbox
  egov-bridge quarantine [list] -c FILE [--source NAME] [--raw]
                                        rows their mapping rejected, with reasons (citizen data masked)
  egov-bridge quarantine reprocess -c FILE [--source NAME]
                                        map quarantined rows again after a mapping fix
  egov-bridge zalo token set -c FILE [--sink NAME] [--token-file F]
                                        store a new refresh token after re-authorising the app
  egov-bridge zalo status -c FILE       token age and expiry, followers, routes and savings this month
  egov-bridge zalo followers import -c FILE FILE.csv
                                        link followers to phones from an agency's list (user_id,phone,…)
  egov-bridge zalo send -c FILE --phone P --text T [--dry-run]
                                        send one test message through the Zalo sink
  egov-bridge version                   print the version

Run 'egov-bridge COMMAND --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: tests call it directly.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "state":
		return cmdState(ctx, args[1:], stdout, stderr)
	case "replay":
		return cmdReplay(ctx, args[1:], stdout, stderr)
	case "quarantine":
		return cmdQuarantine(ctx, args[1:], stdout, stderr)
	case "test":
		return cmdTest(args[1:], stdout, stderr)
	case "preview":
		return cmdPreview(ctx, args[1:], stdout, stderr)
	case "zalo":
		return cmdZalo(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "egov-bridge %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "egov-bridge: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

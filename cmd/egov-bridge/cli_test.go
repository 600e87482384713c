package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasHelp: `egov-bridge … --help` exits 0 and shows the usage for
// every command and subcommand.
func TestEveryCommandHasHelp(t *testing.T) {
	a := &app{}
	var paths [][]string
	forEach(a.rootCmd(), func(c *cobra.Command) {
		parts := strings.Fields(c.CommandPath())[1:]
		paths = append(paths, parts)
	})
	if len(paths) < 15 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, p := range paths {
		code, out, errOut := runCmd(t, append(p, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v --help: exit %d\n%s%s", p, code, out, errOut)
		}
	}
}

// TestCommandLineMistakesExit2: unknown commands, flags and arguments are errors
// (exit 2) that name the mistake, never ignored.
func TestCommandLineMistakesExit2(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{}, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"validate", "extra.yaml"}, `unknown command "extra.yaml" for "egov-bridge validate"`},
		{[]string{"run", "--onec"}, "unknown flag: --onec"},
		{[]string{"run", "--sync-first"}, "--sync-first needs --once"},
		{[]string{"state", "audit", "extra"}, `unknown command "extra"`},
		{[]string{"state", "reset-cursor"}, "accepts 1 arg(s), received 0"},
		{[]string{"preview", "-c", "x.yaml"}, `required flag(s) "source" not set`},
		{[]string{"preview", "--source", "s", "--limit", "0"}, "--limit must be at least 1"},
		{[]string{"zalo", "followers", "import", "a.csv", "b.csv"}, "accepts 1 arg(s), received 2"},
		{[]string{"version", "now"}, `unknown command "now"`},
	} {
		code, _, errOut := runCmd(t, tt.args...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, want %d with %q in:\n%s", tt.args, code, exitUsage, tt.want, errOut)
		}
	}
}

// TestShellCompletion: `completion bash|zsh|fish` prints a script for the shell.
func TestShellCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_egov-bridge", "zsh": "#compdef egov-bridge", "fish": "complete -c egov-bridge"} {
		code, out, errOut := runCmd(t, "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, %q not in output (%d bytes)\n%s", shell, code, want, len(out), errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code, out, _ := runCmd(t, args...); code != 0 || out != "egov-bridge dev\n" {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

// TestCompletionOffersConfigNames: shell completion of --source, --sink and
// reset-cursor's argument offers the names in the config given with -c.
func TestCompletionOffersConfigNames(t *testing.T) {
	demo := filepath.Join(repoRoot, "configs", "demo.yaml")
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "preview", "-c", demo, "--source", ""}, []string{"motcua-demo"}},
		{[]string{"__complete", "replay", "-c", demo, "--sink", ""}, []string{"console", "events", "zalo"}},
		{[]string{"__complete", "state", "reset-cursor", "-c", demo, ""}, []string{"motcua-demo"}},
	} {
		code, out, errOut := runCmd(t, tt.args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != len(tt.want)+1 || strings.Join(lines[:len(tt.want)], " ") != strings.Join(tt.want, " ") {
			t.Errorf("%v: exit %d\n%s%s", tt.args, code, out, errOut)
		}
	}
}

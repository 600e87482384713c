package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) validateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate [-c FILE]",
		Short: "check a config and every mapping it names; every mistake with file:line",
		Args:  cobra.NoArgs,
	}
	cfgFlag := configFlag(cmd, false)
	cmd.RunE = action(func([]string) int {
		path, cfg, ok := loadFlagConfig(*cfgFlag, a.stderr)
		if !ok {
			return exitFailed
		}
		fmt.Fprintf(a.stdout, "%s: ok (%d sources, %d sinks, %d routes)\n", path, len(cfg.Sources), len(cfg.Sinks), len(cfg.Routes))
		return exitOK
	})
	return cmd
}

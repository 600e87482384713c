package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

func (a *app) validateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate [-c FILE] [--show]",
		Short: "check a config and every mapping it names; every mistake with file:line",
		Args:  cobra.NoArgs,
	}
	cfgFlag := configFlag(cmd, false)
	show := cmd.Flags().Bool("show", false, "also print the config as the daemon reads it: every default filled in, secrets redacted")
	cmd.RunE = action(func([]string) int {
		path, cfg, ok := loadFlagConfig(*cfgFlag, a.stderr)
		if !ok {
			return exitFailed
		}
		if *show {
			if err := printEffective(a.stdout, cfg); err != nil {
				fmt.Fprintln(a.stderr, "egov-bridge:", err)
				return exitFailed
			}
		}
		fmt.Fprintf(a.stdout, "%s: ok (%d sources, %d sinks, %d routes)\n", path, len(cfg.Sources), len(cfg.Sinks), len(cfg.Routes))
		return exitOK
	})
	return cmd
}

// printEffective prints the loaded config with its defaults, each secret (by its
// spec's secret tag) shown as [redacted].
func printEffective(w io.Writer, cfg *engine.Config) error {
	top, _ := config.Redacted(cfg).(map[string]any)
	if top == nil {
		top = map[string]any{}
	}
	var sources, sinks []any
	for i := range cfg.Sources {
		sources = append(sources, merged(&cfg.Sources[i], cfg.Sources[i].Options))
	}
	for i, s := range cfg.Sinks {
		m := merged(&cfg.Sinks[i], s.Options)
		d := cfg.DeliveryFor(s.Name)
		m["delivery"] = config.Redacted(&d)
		sinks = append(sinks, m)
	}
	top["sources"], top["sinks"] = sources, sinks
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(top); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w)
	return err
}

func merged(common, options any) map[string]any {
	out := map[string]any{}
	for _, v := range []any{common, options} {
		if m, ok := config.Redacted(v).(map[string]any); ok {
			for k, x := range m {
				out[k] = x
			}
		}
	}
	return out
}

package main

import (
	"fmt"
	"io"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs, cfgFlag := newFlags("validate", "validate [-c FILE]", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path, err := configPath(*cfgFlag, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d sources, %d sinks, %d routes)\n", path, len(cfg.Sources), len(cfg.Sinks), len(cfg.Routes))
	return 0
}

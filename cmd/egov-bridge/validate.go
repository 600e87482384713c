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
	path, cfg, ok := loadFlagConfig(*cfgFlag, stderr)
	if !ok {
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d sources, %d sinks, %d routes)\n", path, len(cfg.Sources), len(cfg.Sinks), len(cfg.Routes))
	return 0
}

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	egovbridge "github.com/egov-bridge/egov-bridge"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// demoConfig is the config used when -c is not given.
const demoConfig = "configs/demo.yaml"

// demoDir is where the embedded demo is unpacked when run outside a checkout.
const demoDir = "egov-bridge-demo"

// configPath returns the config to load: the given one, the checkout's demo, or the
// embedded demo unpacked beside the working folder.
func configPath(given string, stderr io.Writer) (string, error) {
	if given != "" {
		return given, nil
	}
	if _, err := os.Stat(demoConfig); err == nil {
		return demoConfig, nil
	}
	target := filepath.Join(demoDir, demoConfig)
	if _, err := os.Stat(target); err == nil {
		return target, nil
	}
	if err := unpack(demoDir); err != nil {
		return "", fmt.Errorf("unpack the embedded demo: %w", err)
	}
	fmt.Fprintf(stderr, "egov-bridge: no -c given; unpacked the embedded demo into %s/\n", demoDir)
	return target, nil
}

func unpack(dir string) error {
	return fs.WalkDir(egovbridge.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, p)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := egovbridge.Files.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

// loadFlagConfig resolves the -c flag (or the demo) and loads the config, printing
// what went wrong; every command that reads a config starts with it.
func loadFlagConfig(given string, stderr io.Writer) (string, *engine.Config, bool) {
	path, err := configPath(given, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return "", nil, false
	}
	cfg, ok := loadConfig(path, stderr)
	return path, cfg, ok
}

// loadConfig loads and validates; errors are printed one per line.
func loadConfig(path string, stderr io.Writer) (*engine.Config, bool) {
	cfg, err := engine.LoadFile(path)
	if err != nil {
		printConfigErrors(err, stderr)
		return nil, false
	}
	return cfg, true
}

func printConfigErrors(err error, w io.Writer) {
	fmt.Fprintln(w, err)
	var errs config.Errors
	if errors.As(err, &errs) && len(errs) > 1 {
		fmt.Fprintf(w, "%d errors\n", len(errs))
	}
}

package reference

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Files returns every generated file (pages and schemas) by its path relative to
// the repository's root.
func Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	for p, text := range Pages() {
		out[filepath.ToSlash(filepath.Join(DocsDir, p))] = []byte(text)
	}
	schemas, err := Schemas()
	if err != nil {
		return nil, err
	}
	for name, b := range schemas {
		out[SchemaDir+"/"+name] = b
	}
	return out, nil
}

// Write writes every generated file under root and removes generated-looking files
// (pages under DocsDir, schemas under SchemaDir) that are no longer generated. It
// returns the paths it changed.
func Write(root string) ([]string, error) {
	files, err := Files()
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, p := range sortedPaths(files) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if old, err := os.ReadFile(full); err == nil && bytes.Equal(old, files[p]) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return changed, err
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			return changed, err
		}
		changed = append(changed, p)
	}
	extra, err := extraFiles(root, files)
	if err != nil {
		return changed, err
	}
	for _, p := range extra {
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			return changed, err
		}
		changed = append(changed, p)
	}
	return changed, nil
}

// Stale compares the committed files under root with what the code generates and
// returns an error naming every difference and the command that fixes them.
func Stale(root string) error {
	files, err := Files()
	if err != nil {
		return err
	}
	var problems []string
	for _, p := range sortedPaths(files) {
		old, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, p+": missing")
		case err != nil:
			return err
		case !bytes.Equal(old, files[p]):
			problems = append(problems, p+": differs from what the code generates")
		}
	}
	extra, err := extraFiles(root, files)
	if err != nil {
		return err
	}
	for _, p := range extra {
		problems = append(problems, p+": no longer generated")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("the reference pages or schemas are stale; run `%s` and commit the result:\n  %s",
		Command, strings.Join(problems, "\n  "))
}

func extraFiles(root string, files map[string][]byte) ([]string, error) {
	var extra []string
	for _, dir := range []string{DocsDir, SchemaDir} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if _, ok := files[rel]; !ok && (strings.HasSuffix(rel, ".md") || strings.HasSuffix(rel, ".json")) {
				extra = append(extra, rel)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(extra)
	return extra, nil
}

func sortedPaths(files map[string][]byte) []string {
	out := make([]string, 0, len(files))
	for p := range files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

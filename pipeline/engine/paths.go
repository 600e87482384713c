package engine

import "path/filepath"

func resolveAgainst(configFile string) func(string) string {
	dir := filepath.Dir(configFile)
	return func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
}

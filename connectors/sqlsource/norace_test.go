//go:build !race

package sqlsource

const raceEnabled = false

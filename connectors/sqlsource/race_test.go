//go:build race

package sqlsource

// raceEnabled: modernc's SQLite is Go translated from C, and the race detector
// instruments all of it, making it about 20 times slower.
const raceEnabled = true

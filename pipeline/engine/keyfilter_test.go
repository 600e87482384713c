package engine

import (
	"strconv"
	"testing"
)

func TestKeyFilterKnowsExactlyTheKeysItWasGiven(t *testing.T) {
	for _, slots := range []int{16, 1 << 16} { // 16: the filter grows many times
		f := newKeyFilter(slots)
		const n = 200_000
		for i := range n {
			if f.seen("HS" + strconv.Itoa(i)) {
				// 64-bit hashes: a collision among 200,000 keys is about one chance in 10^9.
				t.Fatalf("slots %d: key %d reported seen before it was added", slots, i)
			}
		}
		for i := range n {
			if !f.seen("HS" + strconv.Itoa(i)) {
				t.Fatalf("slots %d: key %d added, then reported unseen", slots, i)
			}
		}
		if f.n != n {
			t.Errorf("slots %d: holds %d hashes, want %d", slots, f.n, n)
		}
		if load := float64(f.n) / float64(len(f.slots)); load > 0.75 {
			t.Errorf("slots %d: load %.2f, above the 0.75 it grows at", slots, load)
		}
	}
}

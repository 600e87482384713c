package engine

import (
	"strconv"
	"testing"
)

func TestKeyFilterNeverForgetsAKey(t *testing.T) {
	for _, capacity := range []uint{16, 1000} { // 16: the filter grows several times
		f := newKeyFilter(capacity)
		const n = 5000
		falsePositives := 0
		for i := range n {
			if f.seen("HS" + strconv.Itoa(i)) {
				falsePositives++
			}
		}
		for i := range n {
			if !f.seen("HS" + strconv.Itoa(i)) {
				t.Fatalf("capacity %d: key %d added, then reported unseen", capacity, i)
			}
		}
		// About one in a thousand per filter; a few dozen would mean the sizing broke.
		if falsePositives > n/100 {
			t.Errorf("capacity %d: %d of %d new keys reported seen", capacity, falsePositives, n)
		}
	}
}

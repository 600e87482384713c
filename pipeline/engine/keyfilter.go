package engine

import "github.com/bits-and-blooms/bloom/v3"

// keyFilter remembers the keys a fresh first sync has read, in about 1.8 MB per
// million keys: it may say a key was seen when it was not (about one in a
// thousand), never the reverse. A key it has not seen is known to be absent from
// the store (see runState.fresh); a key it may have seen is looked up.
type keyFilter struct {
	full  []*bloom.BloomFilter // filled to their capacity, oldest first
	cur   *bloom.BloomFilter
	n     uint // keys added to cur
	limit uint // cur's capacity
}

const (
	// keyFilterStart is the first filter's capacity: a million keys, so a source
	// of up to that size costs one allocation.
	keyFilterStart = 1 << 20
	keyFilterFP    = 0.001
)

func newKeyFilter(capacity uint) *keyFilter {
	return &keyFilter{cur: bloom.NewWithEstimates(capacity, keyFilterFP), limit: capacity}
}

// seen reports whether key may have been added before, and adds it. Past its
// capacity the filter adds one twice as large instead of letting the false
// positives grow.
func (f *keyFilter) seen(key string) bool {
	for _, b := range f.full {
		if b.TestString(key) {
			return true
		}
	}
	if f.cur.TestOrAddString(key) {
		return true
	}
	f.n++
	if f.n >= f.limit {
		f.full = append(f.full, f.cur)
		f.limit *= 2
		f.cur, f.n = bloom.NewWithEstimates(f.limit, keyFilterFP), 0
	}
	return false
}

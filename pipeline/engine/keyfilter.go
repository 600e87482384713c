package engine

import "hash/maphash"

// keyFilter remembers the keys a fresh first sync has read, as 64-bit hashes in an
// open-addressing table: 8 to 16 bytes a key (16 MB for a million). It says a key
// was seen when it was, and otherwise only when two keys share a hash (about one
// chance in 10^7 in a million-key sync). A key it has not seen is known to be
// absent from the store (see runState.fresh); a key it has seen is looked up.
//
// Exactness matters more than size here: while a fresh first sync bulk-loads the
// snapshot without its key index (see runState.bulk), the first key reported seen
// ends the bulk load, so a filter that cried wolf once in a thousand keys (a Bloom
// filter of the same 1.8 MB a million) would end it after a few thousand rows.
type keyFilter struct {
	seed  maphash.Seed
	slots []uint64 // 0: empty; a hash of 0 is stored as 1
	n     int
}

// keyFilterStart is the filter's first number of slots; it doubles when three
// quarters are taken.
const keyFilterStart = 1 << 16

func newKeyFilter(slots int) *keyFilter {
	size := 16
	for size < slots {
		size *= 2
	}
	return &keyFilter{seed: maphash.MakeSeed(), slots: make([]uint64, size)}
}

// seen reports whether key was added before (or shares its hash with a key that
// was), and adds it.
func (f *keyFilter) seen(key string) bool {
	if f.n >= len(f.slots)/4*3 {
		f.grow()
	}
	return !f.add(maphash.String(f.seed, key))
}

// has reports whether key was added before (or shares its hash with a key that
// was), without adding it.
func (f *keyFilter) has(key string) bool {
	_, ok := f.slot(maphash.String(f.seed, key))
	return ok
}

// add stores hash h and reports whether it was absent.
func (f *keyFilter) add(h uint64) bool {
	i, ok := f.slot(h)
	if ok {
		return false
	}
	f.slots[i] = stored(h)
	f.n++
	return true
}

// slot returns where hash h is stored and true, or the empty slot it would take
// and false.
func (f *keyFilter) slot(h uint64) (int, bool) {
	h = stored(h)
	mask := uint64(len(f.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch f.slots[i] {
		case 0:
			return int(i), false
		case h:
			return int(i), true
		}
	}
}

// stored is hash h as the table holds it: 0 marks an empty slot.
func stored(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

func (f *keyFilter) grow() {
	old := f.slots
	f.slots, f.n = make([]uint64, 2*len(old)), 0
	for _, h := range old {
		if h != 0 {
			f.add(h)
		}
	}
}

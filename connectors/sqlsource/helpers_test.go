package sqlsource

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// recorder is an Emitter that keeps what it is given.
type recorder struct {
	rows     []pipeline.Row
	rejected []rejection
}

type rejection struct {
	row    pipeline.Row
	reason error
}

func (r *recorder) Emit(row pipeline.Row) error {
	r.rows = append(r.rows, row)
	return nil
}

func (r *recorder) Reject(row pipeline.Row, reason error) error {
	r.rejected = append(r.rejected, rejection{row, reason})
	return nil
}

// readRecorded reads from pos until done, failing after maxBatches batches.
func readRecorded(t testing.TB, src pipeline.Source, pos pipeline.Position, maxBatches int) (*recorder, pipeline.Position) {
	t.Helper()
	rec := &recorder{}
	for range maxBatches {
		next, done, err := src.ReadBatch(t.Context(), pos, rec)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		pos = next
		if done {
			return rec, pos
		}
	}
	t.Fatalf("source not done after %d batches (%d rows, %d rejected)", maxBatches, len(rec.rows), len(rec.rejected))
	return nil, nil
}

func payloads(rows []pipeline.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprint(r["payload"])
	}
	return out
}

// label names a rejected row by its payload, or its key (id or ma) when it has none.
func label(r pipeline.Row) string {
	for _, c := range []string{"payload", "id", "ma"} {
		if v, ok := r[c]; ok {
			return fmt.Sprint(v)
		}
	}
	return fmt.Sprint(r)
}

// assertReasons wants each labelled row rejected exactly once with a reason
// containing the given text, and nothing else rejected.
func assertReasons(t *testing.T, got []rejection, want map[string]string) {
	t.Helper()
	count := map[string]int{}
	for _, r := range got {
		l := label(r.row)
		count[l]++
		w, ok := want[l]
		switch {
		case !ok:
			t.Errorf("rejected %q, want it not rejected: %v", l, r.reason)
		case r.reason == nil || !strings.Contains(r.reason.Error(), w):
			t.Errorf("rejected %q because %v; want a reason containing %q", l, r.reason, w)
		}
	}
	var missing []string
	for l := range want {
		if count[l] != 1 {
			missing = append(missing, fmt.Sprintf("%q rejected %d times", l, count[l]))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("want each rejected once: %s", strings.Join(missing, ", "))
	}
}

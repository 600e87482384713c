package logsink

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func TestDeliverAppendsOneJSONLinePerEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "events.jsonl")
	for round := 0; round < 2; round++ { // reopening appends, never truncates
		s, err := New(pipeline.Env{}, Options{Path: path, Sync: true})
		if err != nil {
			t.Fatal(err)
		}
		ev := &pipeline.Event{ID: "e" + string(rune('0'+round)), Type: "created", Key: "A1",
			After: map[string]any{"citizen": "Nguyễn Văn An"}, DetectedAt: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
		if err := s.Deliver(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev pipeline.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q is not an event: %v", sc.Text(), err)
		}
		if ev.After["citizen"] != "Nguyễn Văn An" {
			t.Errorf("text not kept as UTF-8: %v", ev.After["citizen"])
		}
		ids = append(ids, ev.ID)
	}
	if len(ids) != 2 || ids[0] != "e0" || ids[1] != "e1" {
		t.Fatalf("ids = %v, want [e0 e1]", ids)
	}
}

// Concurrent batches never interleave: each batch is one write, its lines
// together in the file.
func TestBatchIsOneWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s, err := New(pipeline.Env{}, Options{Path: path, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	const batches, size = 8, 50
	var wg sync.WaitGroup
	for b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs := make([]*pipeline.Event, size)
			for i := range evs {
				evs[i] = &pipeline.Event{ID: fmt.Sprintf("b%d-%02d", b, i), Key: fmt.Sprint(b), DetectedAt: time.Unix(0, 0)}
			}
			for i, err := range s.DeliverBatch(context.Background(), evs) {
				if err != nil {
					t.Errorf("batch %d event %d: %v", b, i, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != batches*size {
		t.Fatalf("%d lines, want %d", len(lines), batches*size)
	}
	for start := 0; start < len(lines); start += size {
		var first pipeline.Event
		if err := json.Unmarshal([]byte(lines[start]), &first); err != nil {
			t.Fatal(err)
		}
		for i := range size {
			var ev pipeline.Event
			if err := json.Unmarshal([]byte(lines[start+i]), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Key != first.Key || ev.ID != fmt.Sprintf("b%s-%02d", first.Key, i) {
				t.Fatalf("line %d is %s, inside the batch of %s: batches interleaved", start+i, ev.ID, first.Key)
			}
		}
	}
}

// failing fails every write while down is set.
type failing struct {
	down bool
	buf  strings.Builder
}

func (f *failing) Write(p []byte) (int, error) {
	if f.down {
		return 0, errors.New("no space left on device")
	}
	return f.buf.Write(p)
}

// A failed write fails the whole batch, transiently, and does not stick: the retry
// writes the batch once the disk has room again.
func TestFailedWriteFailsTheBatchAndTheRetryWrites(t *testing.T) {
	out := &failing{down: true}
	s := &Sink{out: out, w: bufio.NewWriter(out)}
	evs := []*pipeline.Event{{ID: "a", Key: "1"}, {ID: "b", Key: "2"}}
	for i, err := range s.DeliverBatch(context.Background(), evs) {
		if err == nil || pipeline.IsPermanent(err) {
			t.Fatalf("event %d on a full disk: %v, want a transient error", i, err)
		}
	}
	out.down = false
	for i, err := range s.DeliverBatch(context.Background(), evs) {
		if err != nil {
			t.Fatalf("event %d of the retry: %v", i, err)
		}
	}
	if n := strings.Count(out.buf.String(), "\n"); n != 2 {
		t.Fatalf("%d lines written, want the batch's 2 once:\n%s", n, out.buf.String())
	}
}

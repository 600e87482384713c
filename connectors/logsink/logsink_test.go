package logsink

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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

package logsink

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/sinktest"
)

func TestConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Harness {
		path := filepath.Join(t.TempDir(), "events.jsonl")
		s, err := New(pipeline.Env{}, Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return sinktest.Harness{Sink: s, Received: func(t *testing.T) []pipeline.Event {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var out []pipeline.Event
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var ev pipeline.Event
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Fatal(err)
				}
				out = append(out, ev)
			}
			return out
		}}
	})
}

package store

import (
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// benchRecord is a dossier as the shipped mapping stores it.
var benchRecord = map[string]any{"code": "000.00.12.H45-261107-000123", "status": int64(4), "citizen": "Nguyễn Văn Đức",
	"phone": "84901234567", "procedure": "Cấp giấy phép xây dựng nhà ở riêng lẻ", "unit": "UBND huyện Cần Giuộc",
	"received_at": "2026-11-07T01:30:00Z", "due_at": "2026-11-21T10:00:00Z", "finished_at": nil, "on_time": true,
	"agency": "UBND-CG", "channel": "online"}

// BenchmarkFeedEventJSON decodes a stored feed row and writes its event as a
// log line: through the fields (map) alone, and with the fields' JSON copied
// from the row (decision 0027).
func BenchmarkFeedEventJSON(b *testing.B) {
	s := &sqlStore{}
	stored, _, err := s.encodeFields(benchRecord)
	if err != nil {
		b.Fatal(err)
	}
	ev := pipeline.Event{ID: "e", Type: pipeline.EventCreated, Source: "motcua", Entity: "dossier", Key: "K", Version: 1,
		Snapshot: true, DetectedAt: time.Now()}
	buf := make([]byte, 0, 4096)
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			m, _, err := s.decodeCached(stored)
			if err != nil {
				b.Fatal(err)
			}
			ev.After = m
			if buf, err = pipeline.AppendEventJSON(buf[:0], &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, withMap := range []bool{true, false} {
		name := "copied"
		if !withMap {
			name = "copied-json-only"
		}
		b.Run(name, func(b *testing.B) {
			var keys feedKeys
			var arena []byte
			for b.Loop() {
				m, obj, _, err := s.decodeFeedFields(stored, &keys, &arena, withMap)
				if err != nil {
					b.Fatal(err)
				}
				ev.After, ev.AfterJSON = m, obj
				if buf, err = pipeline.AppendEventJSON(buf[:0], &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

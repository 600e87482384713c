package evnspc

import (
	"fmt"
	"html"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/sourcetest"
)

// The suite's items become schedules of the 14 units (item n goes to unit n mod
// 14): area "Ấp n", start the item's time, reason its payload.
func TestConformance(t *testing.T) {
	sourcetest.Run(t, sourcetest.Harness{Open: func(t *testing.T, st sourcetest.Settings) sourcetest.Fixture {
		s := newSite(t)
		items := map[int64]sourcetest.Item{}
		render := func() {
			byUnit := map[string][]string{}
			ids := make([]int64, 0, len(items))
			for id := range items {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				it := items[id]
				unit := longAn[id%14]
				start := it.UpdatedAt.In(ict)
				end := start.Add(2 * time.Hour)
				byUnit[unit] = append(byUnit[unit], fmt.Sprintf(
					`<div class="entry"><span class="where">KHU VỰC: Ấp %d</span><span class="time">THỜI GIAN: Từ %s ngày %s đến %s ngày %s</span><span class="cause">LÝ DO NGỪNG CUNG CẤP ĐIỆN: %s</span></div>`,
					id, start.Format("15:04:05"), start.Format("02/01/2006"), end.Format("15:04:05"), end.Format("02/01/2006"), html.EscapeString(it.Payload)))
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			clear(s.bodies)
			for u, entries := range byUnit {
				s.bodies[u] = strings.Join(entries, "\n")
			}
		}
		return sourcetest.Fixture{
			Source: openEVN(t, s, longAn, st.Clock, nil),
			Put: func(t *testing.T, its ...sourcetest.Item) {
				for _, it := range its {
					items[it.ID] = it
				}
				render()
			},
			Delete: func(t *testing.T, ids ...int64) {
				for _, id := range ids {
					delete(items, id)
				}
				render()
			},
			Break: func(t *testing.T) func() {
				s.set("PB0607", fixture(t, "unknown.html"))
				return render
			},
			Decode: func(r pipeline.Row) (sourcetest.Item, error) {
				id, err := strconv.ParseInt(strings.TrimPrefix(r[ColArea].(string), "Ấp "), 10, 64)
				if err != nil {
					return sourcetest.Item{}, fmt.Errorf("row %v: area is not \"Ấp <id>\"", r)
				}
				at, _ := r[ColStart].(time.Time)
				if at.Location() != time.UTC {
					return sourcetest.Item{}, fmt.Errorf("row %v: start not in UTC", r)
				}
				return sourcetest.Item{ID: id, UpdatedAt: at, Payload: r[ColReason].(string)}, nil
			},
		}
	}})
}

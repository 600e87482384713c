package pipeline

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendEventJSON appends ev as JSON, decoding to what json.Marshal(ev) produces.
// Sinks that write every event as JSON (a log line, a request body) use it: it is
// written by hand because reflection was most of a fast sink's cost.
func AppendEventJSON(b []byte, ev *Event) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, ev.ID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, ev.Type)
	if ev.Rule != "" {
		b = append(b, `,"rule":`...)
		b = appendJSONString(b, ev.Rule)
	}
	b = append(b, `,"source":`...)
	b = appendJSONString(b, ev.Source)
	b = append(b, `,"entity":`...)
	b = appendJSONString(b, ev.Entity)
	b = append(b, `,"key":`...)
	b = appendJSONString(b, ev.Key)
	if ev.Agency != "" {
		b = append(b, `,"agency":`...)
		b = appendJSONString(b, ev.Agency)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, ev.Version, 10)
	if ev.Epoch != 0 {
		b = append(b, `,"epoch":`...)
		b = strconv.AppendInt(b, ev.Epoch, 10)
	}
	if ev.Snapshot {
		b = append(b, `,"snapshot":true`...)
	}
	if len(ev.Changed) > 0 {
		b = append(b, `,"changed":[`...)
		for i, c := range ev.Changed {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, c)
		}
		b = append(b, ']')
	}
	var err error
	if len(ev.Before) > 0 {
		b = append(b, `,"before":`...)
		if b, err = AppendFieldsJSON(b, ev.Before, nil); err != nil {
			return nil, err
		}
	}
	if ev.AfterJSON != nil && (len(ev.After) > 0 || ev.After == nil && !emptyObject(ev.AfterJSON)) {
		b = append(b, `,"after":`...)
		b = append(b, ev.AfterJSON...)
	} else if len(ev.After) > 0 {
		b = append(b, `,"after":`...)
		if b, err = AppendFieldsJSON(b, ev.After, nil); err != nil {
			return nil, err
		}
	}
	if ev.Message != nil {
		m, err := json.Marshal(ev.Message)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"message":`...)
		b = append(b, m...)
	}
	b = append(b, `,"detected_at":"`...)
	b = ev.DetectedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...), nil
}

// emptyObject reports whether b, JSON that AppendFieldsJSON wrote, is {}: an
// empty After is left out, as json.Marshal leaves it out.
func emptyObject(b []byte) bool { return len(b) == 2 && b[0] == '{' && b[1] == '}' }

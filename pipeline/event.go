package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Event types produced by change detection; rule events carry the rule's name.
const (
	EventCreated = "created"
	EventUpdated = "updated"
	EventDeleted = "deleted"
)

// Event is one detected change, as delivered to sinks.
type Event struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Rule    string `json:"rule,omitempty"`
	Source  string `json:"source"`
	Entity  string `json:"entity"`
	Key     string `json:"key"`
	Agency  string `json:"agency,omitempty"`
	Version int64  `json:"version"`
	// Epoch is when the state store that detected the event was created. A store
	// rebuilt from nothing restarts versions at 1 with a later epoch, so consumers
	// order a record's versions by (epoch, version).
	Epoch    int64          `json:"epoch,omitempty"`
	Snapshot bool           `json:"snapshot,omitempty"`
	Changed  []string       `json:"changed,omitempty"`
	Before   map[string]any `json:"before,omitempty"`
	After    map[string]any `json:"after,omitempty"`
	// AfterJSON, when not nil, is After as AppendFieldsJSON encodes it, made by
	// the store from the stored row it read After from (a first sync's events,
	// decision 0027), so AppendEventJSON copies it instead of encoding After
	// again. Whoever changes After must set it to nil. A sink that implements
	// FieldsJSON may get events whose After is nil and AfterJSON set: the record
	// is then only in AfterJSON.
	AfterJSON  []byte    `json:"-"`
	Message    *Message  `json:"message,omitempty"`
	DetectedAt time.Time `json:"detected_at"`
}

// Message is a rendered notification attached to a rule event.
type Message struct {
	Template string `json:"template,omitempty"`
	Text     string `json:"text"`
	Phone    string `json:"phone,omitempty"`   // 84xxxxxxxxx, for ZNS by phone
	UserID   string `json:"user_id,omitempty"` // a Zalo follower, for an OA message
	// Audience addresses the subscribers of a value (a commune's outages, a
	// school's results) instead of one citizen.
	Audience string `json:"audience,omitempty"`
	// Officials addresses the officials the config lists for the event's agency
	// (or, when it lists none, for the nearest parent that has some), instead of
	// a citizen: the sink looks them up when it delivers (Env.Officials), so their
	// contacts never travel in the event.
	Officials bool `json:"officials,omitempty"`
}

// Official is one agency official a notice addressed to officials reaches: a Zalo
// follower of the OA by user id, else by phone (84xxxxxxxxx) through ZNS.
type Official struct {
	Name   string
	UserID string
	Phone  string
}

// EventID is deterministic: the same change of the same record always gets the same
// id, so a batch replayed after a crash cannot mint a second identity for a change,
// and sinks can use the id as their idempotency key. content is the record's content
// hash after the change: a store that lost its tail (or was rebuilt) counts versions
// again, and the same version of different content must not reuse an id that a
// deduplicating sink has already seen. 32 hex characters fit Zalo's 48-character
// tracking_id.
func EventID(source, entity, key string, version int64, typ, content string) string {
	id := eventIDHex(source, entity, key, version, typ, content)
	return string(id[:])
}

// IsEventID reports whether id is EventID of the rest, without allocating: the
// store checks it for every new record of a first sync (feedable).
func IsEventID(id, source, entity, key string, version int64, typ, content string) bool {
	if len(id) != 32 {
		return false
	}
	want := eventIDHex(source, entity, key, version, typ, content)
	return string(want[:]) == id
}

// eventIDHex is an event id's text: the first 16 bytes of the SHA-256 of the
// values, each followed by a zero byte, in hex. The values are hashed at once:
// one buffer on the stack for the usual sizes instead of a hash state and a
// conversion per part.
func eventIDHex(source, entity, key string, version int64, typ, content string) (id [32]byte) {
	var buf [320]byte
	b := buf[:0]
	for _, s := range [...]string{source, entity, key} {
		b = append(b, s...)
		b = append(b, 0)
	}
	b = strconv.AppendInt(b, version, 10)
	b = append(b, 0)
	b = append(b, typ...)
	b = append(b, 0)
	b = append(b, content...)
	b = append(b, 0)
	sum := sha256.Sum256(b)
	hex.Encode(id[:], sum[:16])
	return id
}

// RuleEventID is the id of the event a rule fires on a change: derived from the
// change event's id, so it inherits whatever identifies the change (version today,
// content too tomorrow) and a replayed change fires the same rule event again.
func RuleEventID(changeID, rule string) string {
	sum := sha256.Sum256([]byte(changeID + "\x00rule:" + rule))
	return hex.EncodeToString(sum[:16])
}

package announce

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline/places"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Residence says which synced records place a citizen in a commune or ward: the
// area segment reaches, besides the followers subscribed to a topic there, the
// followers whose linked phone is the phone of such a record.
type Residence struct {
	Entity string   `yaml:"entity" required:"true" doc:"The entity whose records locate citizens (a mapping's entity)." example:"dossier"`
	Phone  string   `yaml:"phone" default:"phone" doc:"The record's field holding the citizen's phone."`
	Places []string `yaml:"places" required:"true" doc:"The record's fields whose text names the commune or ward (an address, a commune field), by current or former name, matched through the regulation's crosswalk." example:"[address]"`

	index string // the look-up index of the records by the places they name
}

// residentPage is how many located records are read per statement.
const residentPage = 500

// indexResidence asks the store's commits to index each residence's records by
// the communes and wards their place fields name (the crosswalk's ids).
func (s *Service) indexResidence(rs []Residence) error {
	if len(rs) == 0 {
		return nil
	}
	if s.reg.places == nil {
		return fmt.Errorf("announcements.residence: the regulation has no crosswalk of communes and wards (places:)")
	}
	for i, r := range rs {
		if r.Entity == "" || len(r.Places) == 0 {
			return fmt.Errorf("announcements.residence[%d]: name the entity and its place fields", i)
		}
		if r.Phone == "" {
			r.Phone = "phone"
		}
		r.index = "residence:" + strings.Join(r.Places, "+")
		s.st.IndexLookup(r.Entity, r.index, placesNamed(s.reg.places, r.Places))
		s.residence = append(s.residence, r)
	}
	return nil
}

// placesNamed indexes a record by the current units its fields name.
func placesNamed(t *places.Table, fields []string) store.IndexFunc {
	return func(f map[string]any) []string {
		parts := make([]string, 0, len(fields))
		for _, name := range fields {
			if v := text(f[name]); v != "" {
				parts = append(parts, v)
			}
		}
		// A full stop between fields: a name must not run from one into the next.
		return places.IDs(t.Find(strings.Join(parts, ". ")))
	}
}

func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// residents adds the followers whose linked phone is that of a record located
// in one of the places, each once (seen is shared with the segment's other
// recipients). Records are read a page at a time.
func (s *Service) residents(ctx context.Context, ids []string, oaID string, seen map[string]bool, add func(store.ZaloFollower)) error {
	for _, r := range s.residence {
		// Records synced before the residence was configured: indexed once.
		if _, err := s.st.FillLookupIndex(ctx, r.Entity, r.index, s.now()); err != nil {
			return err
		}
		for _, id := range ids {
			for src, key := "", ""; ; {
				hits, err := s.st.LookupRecordsAfter(ctx, r.Entity, r.index, id, src, key, residentPage)
				if err != nil {
					return err
				}
				for _, h := range hits {
					phone, err := transform.PhoneVN(text(h.Fields[r.Phone]))
					if err != nil || phone == "" || seen["r:"+phone] {
						continue
					}
					seen["r:"+phone] = true
					f, err := s.st.ZaloFollowerByPhone(ctx, oaID, phone)
					if errors.Is(err, store.ErrNotFound) {
						continue // the segment is followers: a phone nobody linked is not in it
					}
					if err != nil {
						return err
					}
					add(f)
				}
				if len(hits) < residentPage {
					break
				}
				src, key = hits[len(hits)-1].Source, hits[len(hits)-1].Key
			}
		}
	}
	return nil
}

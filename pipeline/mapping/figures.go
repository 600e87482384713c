package mapping

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Kinds of records the steering figures count (FiguresSpec.Kind).
const (
	KindDossier = "dossier" // one-stop-shop dossiers: received, finished, on time, overdue
	KindOutage  = "outage"  // outage announcements: counted by the time they were announced
)

// FiguresSpec says which of a mapping's fields the steering figures read. The store
// keeps, per record, a row of these facts extracted at commit (indexed), so figures
// on a million dossiers are counted from indexes, and time-dependent ones (overdue
// now, due soon) are judged at query time against the clock.
type FiguresSpec struct {
	Kind string `yaml:"kind" required:"true" doc:"What the records are for the figures: dossier (received, in progress, finished, on time, overdue) or outage (counted on the day of received_at)." example:"dossier"` // dossier or outage
	// Status is an int field; Open, Finished and Supplement list its values that mean
	// "being processed", "result ready or returned" and "supplement requested".
	// Statuses in none of them (new, rejected, withdrawn, stopped) are counted as
	// received only.
	Status     string  `yaml:"status" doc:"An int field: the dossier's status. Needed for dossiers." example:"status"`
	Open       []int64 `yaml:"open" doc:"The status values of a dossier being processed." example:"[2, 4, 5, 6]"`
	Finished   []int64 `yaml:"finished" doc:"The status values of a finished dossier (result ready or returned)." example:"[9, 10]"`
	Supplement []int64 `yaml:"supplement" doc:"The status values of a dossier waiting for the citizen's supplement; counted on the day first seen." example:"[5]"`
	// Time fields: when the dossier was received (an outage: announced), when it is
	// due, when it was finished.
	ReceivedAt string `yaml:"received_at" required:"true" doc:"A time field: when the dossier was received (an outage: the time it is counted at)." example:"received_at"`
	DueAt      string `yaml:"due_at" doc:"A time field: when the dossier is due. Needed for dossiers." example:"due_at"`
	FinishedAt string `yaml:"finished_at" doc:"A time field: when the dossier was finished." example:"finished_at"`
	// Bool fields, optional: submitted online (the dossier's channel), and its
	// paperwork digitised (when the source provides the flag).
	Online    string `yaml:"online" doc:"A bool field: submitted online (the dossier's channel), for the online share." example:"online"`
	Digitised string `yaml:"digitised" doc:"A bool field: the dossier's paperwork digitised, where a source provides the flag." example:"digitised"`
}

// Facts are one record's figures facts, extracted by Mapping.Facts.
type Facts struct {
	Kind       string
	State      string // FactOpen, FactFinished or FactOther
	Supplement bool   // the status means "supplement requested"
	ReceivedAt time.Time
	DueAt      time.Time
	FinishedAt time.Time
	OnTime     *bool // finished, with both dates: finished no later than due
	Online     *bool
	Digitised  *bool
}

// Fact states.
const (
	FactOpen     = "open"
	FactFinished = "finished"
	FactOther    = "other"
)

type figures struct {
	spec FiguresSpec
}

func compileFigures(d *config.Decoder, spec *FiguresSpec, fieldTypes map[string]string, broken func(string, bool) bool) *figures {
	if spec == nil || broken("figures", false) {
		return nil
	}
	ok := true
	if spec.Kind != KindDossier && spec.Kind != KindOutage {
		d.Errorf("figures.kind", "unknown kind %q (want dossier or outage)", spec.Kind)
		ok = false
	}
	check := func(key, name, want string, required bool) {
		if name == "" {
			if required {
				d.Errorf("figures."+key, "name the %s field", want)
				ok = false
			}
			return
		}
		typ, known := fieldTypes[name]
		switch {
		case !known:
			msg := fmt.Sprintf("unknown field %q", name)
			if s := closestName(name, fieldTypes); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.Errorf("figures."+key, "%s", msg)
			ok = false
		case typ != want && typ != typeBroken:
			d.Errorf("figures."+key, "field %q is of type %s; want a field of type %s", name, typeName(typ), want)
			ok = false
		}
	}
	dossier := spec.Kind == KindDossier
	check("status", spec.Status, TypeInt, dossier)
	check("received_at", spec.ReceivedAt, TypeTime, true)
	check("due_at", spec.DueAt, TypeTime, dossier)
	check("finished_at", spec.FinishedAt, TypeTime, false)
	check("online", spec.Online, TypeBool, false)
	check("digitised", spec.Digitised, TypeBool, false)
	if dossier && len(spec.Open) == 0 {
		d.Errorf("figures.open", "list the status values of a dossier being processed, e.g. [2, 4, 5, 6]")
		ok = false
	}
	if dossier && len(spec.Finished) == 0 {
		d.Errorf("figures.finished", "list the status values of a finished dossier, e.g. [9, 10]")
		ok = false
	}
	for _, v := range spec.Open {
		if slices.Contains(spec.Finished, v) {
			d.Errorf("figures.finished", "status %d is listed as both open and finished", v)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return &figures{spec: *spec}
}

// HasFigures reports whether the mapping declares figures: (its records are counted
// by the steering figures).
func (m *Mapping) HasFigures() bool { return m.figures != nil }

// Facts extracts a record's figures facts; ok is false when the mapping declares no
// figures.
func (m *Mapping) Facts(fields map[string]any) (f Facts, ok bool) {
	if m.figures == nil {
		return Facts{}, false
	}
	s := &m.figures.spec
	f = Facts{Kind: s.Kind, State: FactOther}
	if s.Status != "" {
		if st, isInt := fields[s.Status].(int64); isInt {
			switch {
			case slices.Contains(s.Open, st):
				f.State = FactOpen
			case slices.Contains(s.Finished, st):
				f.State = FactFinished
			}
			f.Supplement = slices.Contains(s.Supplement, st)
		}
	}
	timeOf := func(name string) time.Time {
		if t, isTime := fields[name].(time.Time); isTime && name != "" {
			return t.UTC()
		}
		return time.Time{}
	}
	boolOf := func(name string) *bool {
		if b, isBool := fields[name].(bool); isBool && name != "" {
			return &b
		}
		return nil
	}
	f.ReceivedAt, f.DueAt, f.FinishedAt = timeOf(s.ReceivedAt), timeOf(s.DueAt), timeOf(s.FinishedAt)
	if f.State == FactFinished && !f.FinishedAt.IsZero() && !f.DueAt.IsZero() {
		onTime := !f.FinishedAt.After(f.DueAt)
		f.OnTime = &onTime
	}
	f.Online, f.Digitised = boolOf(s.Online), boolOf(s.Digitised)
	return f, true
}

// FactsVersion identifies what the facts and timers the store keeps for this
// mapping's records depend on (its figures: block, its timer rules and its agency
// field); when it changes, they are rebuilt from the snapshot. "" when the mapping
// has neither figures nor timers.
func (m *Mapping) FactsVersion() string {
	if m.figures == nil && !m.HasTimers() {
		return ""
	}
	h := sha256.New()
	if m.figures != nil {
		fmt.Fprintf(h, "figures %+v\n", m.figures.spec)
	}
	fmt.Fprintf(h, "timers %q\n", m.TimerRules())
	if m.agencyIdx >= 0 {
		fmt.Fprintf(h, "agency %s\n", m.fields[m.agencyIdx].name)
	}
	return "1:" + hex.EncodeToString(h.Sum(nil)[:12])
}

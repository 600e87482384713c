// Package places knows a province's communes and wards by every name people use
// for them. On 1 July 2025 districts were abolished and communes and wards merged
// and renamed (Long An became part of Tây Ninh); outage notices, agency records and
// citizens go on using the former names for years. A crosswalk table maps each
// former unit to the current one, and this package finds the current units named
// in a text or typed by a citizen, whichever name is used, with or without
// diacritics, on word boundaries.
package places

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// The table comes from a CSV file (current,former; how provinces publish the
// lists) or the same in YAML.

// Place is a current commune or ward.
type Place struct {
	ID   string // its folded full name ("xa my yen"): stable, stored with subscriptions
	Name string // as the crosswalk writes it ("Xã Mỹ Yên")
}

// Table is a province's crosswalk: every current unit and the names it goes by.
type Table struct {
	places   []Place
	names    map[string][]int // folded name, words joined by one space -> places
	maxWords int
}

// kinds are the words naming a unit's kind, which people often leave out.
var kinds = [][]string{{"xa"}, {"phuong"}, {"thi", "tran"}, {"dac", "khu"}}

// words folds s (lower case, no diacritics, đ as d) and splits it into words of
// letters and digits; anything else separates words.
func words(s string) []string {
	return strings.FieldsFunc(transform.Fold(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// core is a name without its kind ("xa my yen" -> "my yen"); a name that would be
// left as digits only ("phuong 1") keeps its kind, or "1" would match any number.
func core(w []string) []string {
	for _, k := range kinds {
		if len(w) > len(k) && equal(w[:len(k)], k) {
			rest := w[len(k):]
			if strings.Trim(strings.Join(rest, ""), "0123456789") == "" {
				return w
			}
			return rest
		}
	}
	return w
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Load reads a crosswalk file: CSV (see Parse), or YAML when the name ends in
// .yaml or .yml (see ParseYAML).
func Load(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("places: %w", err)
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		return ParseYAML(b, path)
	}
	return Parse(bytes.NewReader(b), path)
}

// ParseYAML reads a crosswalk written as a YAML list of current units, each with
// the former units merged into it:
//
//   - current: Xã Mỹ Yên
//     former: [Xã Long Hiệp, Xã Phước Lợi]
func ParseYAML(b []byte, file string) (*Table, error) {
	var units []struct {
		Current string   `yaml:"current"`
		Former  []string `yaml:"former"`
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("places: %s: %w", file, err)
	}
	if err := doc.Decode(&units); err != nil {
		return nil, fmt.Errorf("places: %s: %w", file, err)
	}
	var items []*yaml.Node
	if len(doc.Content) > 0 {
		items = doc.Content[0].Content
	}
	t := &Table{names: map[string][]int{}}
	byID := map[string]int{}
	var errs []error
	for i, u := range units {
		line := 0
		if i < len(items) {
			line = items[i].Line
		}
		if len(words(u.Current)) == 0 {
			errs = append(errs, fmt.Errorf("places: %s:%d: current is empty", file, line))
			continue
		}
		idx := t.unit(byID, u.Current)
		for _, f := range u.Former {
			if len(words(f)) == 0 {
				errs = append(errs, fmt.Errorf("places: %s:%d: a former name of %s has no letters or digits", file, line, u.Current))
				continue
			}
			t.add(f, idx)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// unit returns the index of the current unit named cur, adding it when new.
func (t *Table) unit(byID map[string]int, cur string) int {
	id := strings.Join(words(cur), " ")
	if idx, seen := byID[id]; seen {
		return idx
	}
	idx := len(t.places)
	byID[id] = idx
	t.places = append(t.places, Place{ID: id, Name: cur})
	t.add(cur, idx)
	return idx
}

// Parse reads a crosswalk: UTF-8 CSV (a BOM and Excel's ';' are accepted) with a
// header naming the columns `current` (the unit today) and `former` (a unit
// merged into it, or blank for a current unit listed on its own); other columns
// are ignored. One row per former unit. Errors name file, line and column.
func Parse(r io.Reader, file string) (*Table, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("places: %s: %w", file, err)
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	comma := ','
	if first, _, _ := bytes.Cut(b, []byte("\n")); bytes.Count(first, []byte(";")) > bytes.Count(first, []byte(",")) {
		comma = ';'
	}
	cr := csv.NewReader(bytes.NewReader(b))
	cr.Comma, cr.FieldsPerRecord, cr.TrimLeadingSpace = comma, -1, true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("places: %s: header: %w", file, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	ci, ok1 := col["current"]
	fi, ok2 := col["former"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("places: %s:1: the header must name the columns current and former (got %s)", file, strings.Join(head, ","))
	}
	t := &Table{names: map[string][]int{}}
	byID := map[string]int{}
	var errs []error
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			errs = append(errs, fmt.Errorf("places: %s:%d: %w", file, line, err))
			continue
		}
		cell := func(i int) string {
			if i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		cur, former := cell(ci), cell(fi)
		if len(words(cur)) == 0 {
			errs = append(errs, fmt.Errorf("places: %s:%d: column current is empty", file, line))
			continue
		}
		idx := t.unit(byID, cur)
		if former != "" {
			if len(words(former)) == 0 {
				errs = append(errs, fmt.Errorf("places: %s:%d: column former has no letters or digits", file, line))
				continue
			}
			t.add(former, idx)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// add makes name (and its form without a kind) one of place idx's names.
func (t *Table) add(name string, idx int) {
	w := words(name)
	for _, form := range [][]string{w, core(w)} {
		key := strings.Join(form, " ")
		if !containsInt(t.names[key], idx) {
			t.names[key] = append(t.names[key], idx)
		}
		t.maxWords = max(t.maxWords, len(form))
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Len is how many current units the table knows.
func (t *Table) Len() int { return len(t.places) }

// Place returns the current unit with the id, if the table knows it.
func (t *Table) Place(id string) (Place, bool) {
	for _, p := range t.places {
		if p.ID == id {
			return p, true
		}
	}
	return Place{}, false
}

// Resolve returns the current units a citizen means by typed, a current or former
// name, with or without its kind and diacritics; more than one when a former name
// went to several units (or two units share a name), none when it names no unit.
func (t *Table) Resolve(typed string) []Place {
	if t == nil {
		return nil
	}
	w := words(typed)
	for _, form := range [][]string{w, core(w)} {
		if idx := t.names[strings.Join(form, " ")]; len(idx) > 0 {
			return t.pick(idx)
		}
	}
	return nil
}

// Find returns the current units named in text (an outage's area, say), each once,
// in the order first named. Names match whole words only, the longest name first,
// so "Mỹ Yên Đông" is not read as "Mỹ Yên" when the table knows both.
func (t *Table) Find(text string) []Place {
	if t == nil {
		return nil
	}
	w := words(text)
	var idx []int
	for i := 0; i < len(w); {
		n := 0
		for l := min(t.maxWords, len(w)-i); l > 0; l-- {
			if found := t.names[strings.Join(w[i:i+l], " ")]; len(found) > 0 {
				for _, x := range found {
					if !containsInt(idx, x) {
						idx = append(idx, x)
					}
				}
				n = l
				break
			}
		}
		i += max(n, 1)
	}
	return t.pick(idx)
}

func (t *Table) pick(idx []int) []Place {
	out := make([]Place, len(idx))
	for i, x := range idx {
		out[i] = t.places[x]
	}
	return out
}

// IDs lists the ids of places.
func IDs(ps []Place) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// Names lists the names of places, sorted, for a message.
func Names(ps []Place) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	sort.Strings(out)
	return out
}

package filesource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/webfetch"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Columns every row carries besides the file's own: the file's name and the row
// (or line) number in it, so a quarantined row can be found in the file.
const (
	ColFile = "_file"
	ColRow  = "_row"
)

// Source reads the rows of the files an agency drops into a folder (or of one
// file at a URL). It has no cursor (pipeline.FullSet): a read from the start lists
// the files, then hands over their rows in batches; the files are the whole set.
type Source struct {
	o      *Options
	path   string // resolved Path
	zone   *time.Location
	clock  pipeline.Clock
	client *webfetch.Client
	read   *reader
	// loaded is the file read last, kept between batches and polls: an unchanged
	// file (same size and modification time, or same content) is not parsed again.
	loaded *loadedFile
}

type loadedFile struct {
	ref   fileRef
	table *table
}

var (
	_ pipeline.Source  = (*Source)(nil)
	_ pipeline.FullSet = (*Source)(nil)
)

// Open builds a source from validated options; settings, when given, replace
// the HTTP client's (tests).
func Open(env pipeline.Env, o *Options, settings *webfetch.Settings) (*Source, error) {
	s := &Source{o: o, zone: env.Zone, clock: env.Clock, path: o.Path}
	if s.zone == nil {
		s.zone = transform.DefaultZone()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if env.Resolve != nil && o.Path != "" {
		s.path = env.Resolve(o.Path)
	}
	s.read = newReader(o, s.zone)
	if o.URL != "" {
		ws := o.HTTP.Settings(s.clock)
		if settings != nil {
			ws = *settings
		}
		var err error
		if s.client, err = webfetch.New(ws); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// FullSet marks the source as cursor-less.
func (s *Source) FullSet() {}

// Close drops the file kept between batches.
func (s *Source) Close() error { s.loaded = nil; return nil }

// fileRef pins one version of a file for the length of a read.
type fileRef struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Mod  int64  `json:"mod,omitempty"`  // modification time, Unix ns (folder)
	Hash string `json:"hash,omitempty"` // content hash (URL)
}

type position struct {
	Files []fileRef `json:"files"`
	File  int       `json:"file"`
	Row   int       `json:"row"`
}

// ReadBatch hands over up to batch_size rows after pos.
func (s *Source) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	var p position
	if pos == nil {
		var err error
		if p.Files, err = s.list(ctx); err != nil {
			return nil, false, err
		}
	} else if err := json.Unmarshal(pos, &p); err != nil {
		return nil, false, fmt.Errorf("file position %q: %w", pos, err)
	}
	for p.File < len(p.Files) {
		lf, err := s.load(ctx, p.Files[p.File])
		if err != nil {
			return nil, false, err
		}
		rows := lf.table.rows
		if p.Row >= len(rows) {
			p.File, p.Row = p.File+1, 0
			continue
		}
		end := min(p.Row+s.o.BatchSize, len(rows))
		for _, dr := range rows[p.Row:end] {
			row := make(pipeline.Row, len(lf.table.columns)+2)
			for i, c := range lf.table.columns {
				if c != "" {
					row[c] = dr.cells[i]
				}
			}
			row[ColFile], row[ColRow] = lf.ref.Name, int64(dr.num)
			if err := out.Emit(row); err != nil {
				return nil, false, err
			}
		}
		p.Row = end
		if p.Row >= len(rows) {
			p.File, p.Row = p.File+1, 0
		}
		if p.File >= len(p.Files) {
			break
		}
		next, _ := json.Marshal(p)
		return next, false, nil
	}
	return nil, true, nil
}

// ignored names are never read: hidden and lock files, and files being written
// under a temporary name to be renamed into place.
func ignored(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "~$") {
		return true
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".tmp", ".part", ".partial", ".crdownload", ".filepart", ".swp":
		return true
	}
	return false
}

// list names the files of this read. A folder with no matching file, or with a
// file still being written, fails the poll: an agency replacing its file must
// not make every record look deleted.
func (s *Source) list(ctx context.Context) ([]fileRef, error) {
	if s.o.URL != "" {
		lf, err := s.fetch(ctx)
		if err != nil {
			return nil, err
		}
		return []fileRef{lf.ref}, nil
	}
	info, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	var cands []os.FileInfo
	dir := s.path
	if info.IsDir() {
		entries, err := os.ReadDir(s.path)
		if err != nil {
			return nil, fmt.Errorf("file source: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || ignored(e.Name()) || !s.matches(e.Name()) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("file source: %w", err)
			}
			cands = append(cands, fi)
		}
	} else {
		dir, cands = filepath.Dir(s.path), []os.FileInfo{info}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("file source: no file in %s matches %s (a poll without its file reads nothing, and nothing counts as deleted)", s.path, s.patternText())
	}
	if s.o.Pick == PickNewest {
		newest := slices.MaxFunc(cands, func(a, b os.FileInfo) int {
			if c := a.ModTime().Compare(b.ModTime()); c != 0 {
				return c
			}
			return strings.Compare(a.Name(), b.Name())
		})
		cands = []os.FileInfo{newest}
	}
	slices.SortFunc(cands, func(a, b os.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	now := s.clock()
	refs := make([]fileRef, len(cands))
	for i, fi := range cands {
		if age := now.Sub(fi.ModTime()); age < s.o.Settle.D() {
			return nil, fmt.Errorf("file source: %s was modified %s ago, less than settle (%s): it may still be being written; the next poll reads it",
				fi.Name(), age.Truncate(time.Millisecond), s.o.Settle.D())
		}
		if fi.Size() > s.o.MaxBytes {
			return nil, fmt.Errorf("file source: %s is %d bytes, more than max_bytes (%d)", fi.Name(), fi.Size(), s.o.MaxBytes)
		}
		refs[i] = fileRef{Name: filepath.Join(dir, fi.Name()), Size: fi.Size(), Mod: fi.ModTime().UnixNano()}
	}
	return refs, nil
}

func (s *Source) matches(name string) bool {
	if s.o.Pattern != "" {
		ok, _ := path.Match(s.o.Pattern, name)
		return ok
	}
	f := formatOf(name)
	return f != "" && (s.o.Format == "" || f == s.o.Format)
}

func (s *Source) patternText() string {
	if s.o.Pattern != "" {
		return s.o.Pattern
	}
	if s.o.Format != "" {
		return "*." + s.o.Format
	}
	return "*.csv or *.xlsx"
}

// load returns the table of ref, read once per read and kept between batches.
func (s *Source) load(ctx context.Context, ref fileRef) (*loadedFile, error) {
	if s.loaded != nil && s.loaded.ref == ref {
		return s.loaded, nil
	}
	if s.o.URL != "" {
		lf, err := s.fetch(ctx)
		if err != nil {
			return nil, err
		}
		if lf.ref != ref {
			return nil, fmt.Errorf("file source: %s changed during the read; the next poll reads it from the start", redact(s.o.URL))
		}
		return lf, nil
	}
	data, err := s.readStable(ref)
	if err != nil {
		return nil, err
	}
	t, err := s.parse(data, ref.Name)
	if err != nil {
		return nil, err
	}
	s.loaded = &loadedFile{ref: ref, table: t}
	return s.loaded, nil
}

// readStable reads a file and checks that it is the version the read began
// with, before and after: a file rewritten meanwhile fails the poll.
func (s *Source) readStable(ref fileRef) ([]byte, error) {
	same := func() error {
		fi, err := os.Stat(ref.Name)
		if err != nil {
			return fmt.Errorf("file source: %w", err)
		}
		if fi.Size() != ref.Size || fi.ModTime().UnixNano() != ref.Mod {
			return fmt.Errorf("file source: %s changed during the read (being written?); the next poll reads it", filepath.Base(ref.Name))
		}
		return nil
	}
	if err := same(); err != nil {
		return nil, err
	}
	f, err := os.Open(ref.Name)
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, s.o.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("file source: %s: %w", filepath.Base(ref.Name), err)
	}
	if err := same(); err != nil {
		return nil, err
	}
	return data, nil
}

func (s *Source) parse(data []byte, name string) (*table, error) {
	format := s.o.Format
	if format == "" {
		format = formatOf(name)
	}
	base := filepath.Base(name)
	if s.o.URL != "" {
		base = redact(s.o.URL)
	}
	if format == FormatXLSX {
		return s.read.readXLSX(data, base)
	}
	return s.read.readCSV(data, base)
}

// fetch gets the file at the URL; an unchanged file costs a 304 and is not parsed
// again.
func (s *Source) fetch(ctx context.Context) (*loadedFile, error) {
	resp, err := s.client.Do(ctx, webfetch.Request{URL: s.o.URL})
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	sum := sha256.Sum256(resp.Body)
	ref := fileRef{Name: redact(s.o.URL), Size: int64(len(resp.Body)), Hash: hex.EncodeToString(sum[:8])}
	if s.loaded != nil && s.loaded.ref == ref {
		return s.loaded, nil
	}
	t, err := s.parse(resp.Body, resp.URL.Path)
	if err != nil {
		s.client.Forget()
		return nil, err
	}
	s.loaded = &loadedFile{ref: ref, table: t}
	return s.loaded, nil
}

// redact is a URL without its query or user info, which may hold a token.
func redact(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			raw = raw[:j+3] + raw[i+1:]
		}
	}
	return raw
}

// Package logsink is the log sink: every event as one JSON line, to stdout or to an
// append-only file. It is the simplest way to see what the daemon detects, and the
// sink the crash tests check delivery against.
package logsink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.AddSink("log", "writes each event as a JSON line to stdout or a file", func() *Options { return &Options{} },
		func(_ context.Context, env pipeline.Env, o *Options) (pipeline.Sink, error) { return New(env, *o) })
}

// Options configure the log sink.
type Options struct {
	Path string `yaml:"path" default:"standard output" doc:"The file to append JSON lines to, relative to the config file; its folder is created. Empty or - means standard output." example:"./data/events.jsonl"`
	// A killed process loses nothing either way: each line is handed to the OS
	// before the delivery counts.
	Sync bool `yaml:"sync" doc:"fsync each delivery's line (a batch's lines with one fsync) before the delivery counts, so a power cut cannot lose a delivered event."`
}

// Sink appends events as JSON lines.
type Sink struct {
	mu   sync.Mutex
	out  io.Writer
	w    *bufio.Writer
	f    *os.File // nil for stdout
	sync bool
	// bufs keeps batch buffers between calls: a batch's lines are most of a
	// megabyte, and made anew for every call they were the sink's largest cost
	// in allocation and collection.
	bufs sync.Pool
}

// maxPooledBuf is the largest batch buffer kept for the next call; a rare huge
// batch is left to the collector.
const maxPooledBuf = 4 << 20

var _ pipeline.BatchSink = (*Sink)(nil)

// New opens the sink's file (creating its folder) or uses stdout.
func New(env pipeline.Env, o Options) (*Sink, error) {
	s := &Sink{sync: o.Sync}
	var out io.Writer = os.Stdout
	if o.Path != "" && o.Path != "-" {
		p := o.Path
		if env.Resolve != nil {
			p = env.Resolve(p)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("log sink: %w", err)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log sink: %w", err)
		}
		s.f, out = f, f
	}
	s.out = out
	s.w = bufio.NewWriter(out)
	return s, nil
}

// ReadsFieldsAsJSON marks the sink as one that writes events only as JSON
// (pipeline.FieldsJSON): a first sync's events reach it without a map of fields.
func (*Sink) ReadsFieldsAsJSON() {}

// Deliver writes one line; the line is handed to the OS before Deliver returns.
func (s *Sink) Deliver(_ context.Context, ev *pipeline.Event) error {
	line, err := pipeline.AppendEventJSON(nil, ev)
	if err != nil {
		return pipeline.Permanentf("log sink: encode event %s: %w", ev.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(append(line, '\n'))
}

// DeliverBatch writes the batch's lines with one write, handed to the OS (and,
// with sync, flushed to disk once) before it returns. An event JSON cannot encode
// fails alone; a failed write fails every event of the batch, which is then
// written again whole: the lines that did get out are duplicates a consumer drops
// by id.
func (s *Sink) DeliverBatch(_ context.Context, evs []*pipeline.Event) []error {
	errs := make([]error, len(evs))
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := (*bp)[:0]
	defer func() {
		if cap(buf) <= maxPooledBuf {
			*bp = buf
			s.bufs.Put(bp)
		}
	}()
	for i, ev := range evs {
		line, err := pipeline.AppendEventJSON(buf, ev)
		if err != nil {
			errs[i] = pipeline.Permanentf("log sink: encode event %s: %w", ev.ID, err)
			continue
		}
		buf = append(line, '\n')
	}
	if len(buf) == 0 {
		return errs
	}
	s.mu.Lock()
	err := s.write(buf)
	s.mu.Unlock()
	if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return errs
}

// write hands lines to the OS and, with sync, to the disk; s.mu is held. After a
// failed write the buffer is dropped, so a disk that was full accepts the retry.
func (s *Sink) write(lines []byte) error {
	s.w.Write(lines)
	if err := s.w.Flush(); err != nil {
		s.w.Reset(s.out)
		return fmt.Errorf("log sink: write: %w", err)
	}
	if s.sync && s.f != nil {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("log sink: sync: %w", err)
		}
	}
	return nil
}

// Close flushes and closes the file.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Flush()
	if s.f != nil {
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

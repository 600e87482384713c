package natssink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/egov-bridge/egov-bridge/internal/redact"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Headers set on every message besides Nats-Msg-Id (the event id).
const (
	HeaderEventType = "Egov-Event-Type"
	HeaderEntity    = "Egov-Entity"
	HeaderKey       = "Egov-Key"
	HeaderVersion   = "Egov-Version"
)

// ErrNotConnected is wrapped by Deliver's error while the connection to NATS is
// down; the engine retries such deliveries with backoff.
var ErrNotConnected = errors.New("not connected to NATS")

// Sink publishes events to a JetStream stream. It is safe for concurrent use.
type Sink struct {
	name    string
	opts    Options
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	servers string // the servers without credentials, for messages
	red     redact.Redactor
	want    string // the subjects the stream must cover: <prefix>.*.*

	ready atomic.Bool // the stream has been found (or created) and checked
	mu    sync.Mutex  // serialises stream checks

	connErr    atomic.Pointer[connError] // why the last connection attempt failed
	closed     chan struct{}             // closed by nats.go once the connection is closed
	closedOnce sync.Once
	closeOnce  sync.Once
}

var _ pipeline.BatchSink = (*Sink)(nil)

// New connects to NATS and checks (or creates) the stream.
//
// Connecting is bounded and lazy (nats.go's RetryOnFailedConnect): New makes one
// attempt per server, each bounded by publish_timeout, and when none answers it
// still returns a sink whose connection keeps retrying in the background. The
// daemon thus starts while NATS is briefly down; until the connection is up,
// Deliver fails fast with a transient error wrapping ErrNotConnected, and the
// stream is checked before the first delivery instead. New fails on what retrying
// cannot fix: invalid options, an unreadable credentials or CA file, and a stream
// that exists but does not take the sink's subjects (or that the server refuses to
// create).
func New(ctx context.Context, env pipeline.Env, o Options) (*Sink, error) {
	return open(ctx, env, o)
}

// open is New with extra nats.go options, which tests use to shorten waits.
func open(ctx context.Context, env pipeline.Env, o Options, extra ...nats.Option) (*Sink, error) {
	if err := pipeline.Invalid(&o); err != nil {
		return nil, pipeline.Permanentf("nats sink %q: invalid options: %v", env.Name, err)
	}
	s := &Sink{
		name:    env.Name,
		opts:    o,
		log:     env.Logger,
		servers: displayServers(o.URL),
		red:     newRedactor(o),
		want:    o.SubjectPrefix + ".*.*",
		closed:  make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("sink", env.Name)

	opts, err := s.natsOptions(env)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(o.URL, append(opts, extra...)...)
	if err != nil {
		return nil, s.errorf("connect to %s: %w", s.servers, s.red.Err(err))
	}
	// Batches publish asynchronously: the acknowledgements they wait for are
	// bounded by publish_timeout, and by the dispatcher's batch and concurrency.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(o.PublishTimeout.D()),
		jetstream.WithPublishAsyncMaxPending(maxPendingAcks))
	if err != nil {
		nc.Close()
		return nil, s.errorf("jetstream: %w", err)
	}
	s.nc, s.js = nc, js

	if !nc.IsConnected() {
		s.log.Warn("NATS is not reachable yet; connecting in the background, deliveries are retried until it is",
			"servers", s.servers, "err", s.lastConnErr())
		return s, nil
	}
	if err := s.ensureStream(ctx); err != nil {
		if isDefinite(err) {
			nc.Close()
			return nil, err
		}
		s.log.Warn("cannot check the stream yet; checking again before the next delivery", "stream", o.Stream, "err", err)
	}
	return s, nil
}

// Deliver publishes one event and returns once JetStream has stored it (or dropped
// it as a duplicate of an id seen within the duplicate window).
func (s *Sink) Deliver(ctx context.Context, ev *pipeline.Event) error {
	if err := s.precheck(ctx, ev); err != nil {
		return err
	}
	msg, err := s.message(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.PublishTimeout.D())
	defer cancel()
	ack, err := s.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(ev.ID),
		// The stream we checked, not whichever stream captures the subject now.
		jetstream.WithExpectStream(s.opts.Stream))
	if err != nil {
		return s.publishError(ev, msg, err)
	}
	if ack.Duplicate {
		s.log.Debug("JetStream dropped a redelivered event", "id", ev.ID, "subject", msg.Subject)
	}
	return nil
}

// precheck checks what a delivery needs before it encodes anything: an event with
// an id, a live context, a connection and the stream.
func (s *Sink) precheck(ctx context.Context, ev *pipeline.Event) error {
	if ev == nil {
		return pipeline.Permanent(s.errorf("nil event"))
	}
	if ev.ID == "" {
		return pipeline.Permanent(s.errorf("an event of entity %s has no id to deduplicate by", ev.Entity))
	}
	if err := ctx.Err(); err != nil {
		return s.errorf("deliver %s: %w", ev.ID, err)
	}
	if !s.nc.IsConnected() {
		return s.notConnected()
	}
	return s.ensureStream(ctx) // transient: a stream an operator fixes lets delivery resume by itself
}

// ReadsFieldsAsJSON marks the sink as one that publishes events only as JSON
// (pipeline.FieldsJSON): a first sync's events reach it without a map of fields.
func (*Sink) ReadsFieldsAsJSON() {}

// message encodes ev with its subject and headers. The body is json.Marshal's
// JSON, written without reflection (pipeline.AppendEventJSON).
func (s *Sink) message(ev *pipeline.Event) (*nats.Msg, error) {
	body, err := pipeline.AppendEventJSON(nil, ev)
	if err != nil {
		return nil, pipeline.Permanent(s.errorf("encode event %s: %w", ev.ID, err))
	}
	msg := &nats.Msg{
		Subject: Subject(s.opts.SubjectPrefix, ev.Entity, ev.Agency),
		Data:    body,
		Header:  nats.Header{},
	}
	msg.Header.Set(HeaderEventType, headerValue(ev.Type))
	msg.Header.Set(HeaderEntity, headerValue(ev.Entity))
	msg.Header.Set(HeaderKey, headerValue(ev.Key))
	msg.Header.Set(HeaderVersion, fmt.Sprint(ev.Version))
	return msg, nil
}

// maxPendingAcks bounds the asynchronous publishes awaiting acknowledgement; a
// batch waits for its own, so this only has to exceed batch × concurrency.
const maxPendingAcks = 1 << 16

// DeliverBatch publishes the batch without waiting between messages (each with
// Nats-Msg-Id = its event id), then waits for JetStream's acknowledgements, at
// most publish_timeout in all: one round trip for the batch instead of one per
// event. Each event's result is its own acknowledgement, classified as Deliver
// classifies a failed publish.
func (s *Sink) DeliverBatch(ctx context.Context, evs []*pipeline.Event) []error {
	errs := make([]error, len(evs))
	futures := make([]jetstream.PubAckFuture, len(evs))
	for i, ev := range evs {
		if errs[i] = s.precheck(ctx, ev); errs[i] != nil {
			continue
		}
		msg, err := s.message(ev)
		if err != nil {
			errs[i] = err
			continue
		}
		f, err := s.js.PublishMsgAsync(msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(s.opts.Stream))
		if err != nil {
			errs[i] = s.publishError(ev, msg, err)
			continue
		}
		futures[i] = f
	}
	timer := time.NewTimer(s.opts.PublishTimeout.D())
	defer timer.Stop()
	var late error // why waiting stopped: the batch's time is up, or ctx ended
	for i, f := range futures {
		if f == nil {
			continue
		}
		var ack *jetstream.PubAck
		var err error
		answered := false
		if late == nil {
			select {
			case ack = <-f.Ok():
				answered = true
			case err = <-f.Err():
				answered = true
			case <-timer.C:
				late = fmt.Errorf("no acknowledgement within publish_timeout %s: %w", s.opts.PublishTimeout.D(), context.DeadlineExceeded)
			case <-ctx.Done():
				late = ctx.Err()
			}
		}
		if !answered { // time is up: take only an answer that is already there
			select {
			case ack = <-f.Ok():
				answered = true
			case err = <-f.Err():
				answered = true
			default:
			}
		}
		switch {
		case !answered:
			errs[i] = s.errorf("publish %s to %s: %w", evs[i].ID, f.Msg().Subject, late)
		case err != nil:
			errs[i] = s.publishError(evs[i], f.Msg(), err)
		case ack.Duplicate:
			s.log.Debug("JetStream dropped a redelivered event", "id", evs[i].ID, "subject", f.Msg().Subject)
		}
	}
	return errs
}

// headerValue keeps header values on one line: a control character (a line break
// in a key, say) would end the header early, so it becomes a space. Headers are for
// routing and filtering; the body is the exact event.
func headerValue(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// Close drains the connection (waiting, bounded by publish_timeout, for what is
// in flight) and closes it. It is safe to call more than once.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		if err := s.nc.Drain(); err != nil {
			s.nc.Close() // not connected: nothing to drain
			return
		}
		select {
		case <-s.closed:
		case <-time.After(s.opts.PublishTimeout.D() + time.Second):
			s.log.Warn("draining the NATS connection timed out; closing it")
			s.nc.Close()
		}
	})
	return nil
}

func (s *Sink) errorf(format string, args ...any) error {
	return fmt.Errorf("nats sink %q: "+format, append([]any{s.name}, args...)...)
}

package natssink

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// streamDescription is the same for every sink and replica, so that two daemons
// creating the stream at once ask for one identical configuration.
const streamDescription = "egov-bridge change events"

// ensureStream finds the stream, or creates it when allowed, and checks that it
// stores every subject the sink publishes on. Once that holds it costs nothing
// until a publish finds no stream answering, which makes it check again.
func (s *Sink) ensureStream(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.PublishTimeout.D())
	defer cancel()
	if err := s.checkStream(ctx); err != nil {
		return s.errorf("%w", err)
	}
	s.ready.Store(true)
	return nil
}

func (s *Sink) checkStream(ctx context.Context) error {
	name := s.opts.Stream
	for attempt := 0; ; attempt++ {
		st, err := s.js.Stream(ctx, name)
		if err == nil {
			return s.checkExisting(st.CachedInfo())
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("look up stream %q: %w", name, s.red.Err(err))
		}
		if !s.opts.CreateStream {
			return &streamError{fmt.Sprintf("stream %q does not exist and create_stream is false: create it with subjects [%q], or set create_stream: true",
				name, s.opts.SubjectPrefix+".>")}
		}
		_, err = s.js.CreateStream(ctx, s.streamConfig())
		if err == nil {
			s.log.Info("created JetStream stream", "stream", name, "subjects", s.opts.SubjectPrefix+".>",
				"duplicate_window", s.opts.DuplicateWindow.D(), "max_age", s.opts.MaxAge.D(), "replicas", s.opts.Replicas)
			return nil
		}
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
			continue // another replica created it meanwhile: check that one
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == codeSubjectOverlap {
			return &streamError{fmt.Sprintf("cannot create stream %q: another stream already stores subjects under %q; set stream to that stream's name, or choose another subject_prefix",
				name, s.opts.SubjectPrefix+".>")}
		}
		return fmt.Errorf("create stream %q with subjects [%q]: %w", name, s.opts.SubjectPrefix+".>", err)
	}
}

func (s *Sink) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.opts.Stream,
		Description: streamDescription,
		Subjects:    []string{s.opts.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		MaxAge:      s.opts.MaxAge.D(),
		Duplicates:  s.opts.DuplicateWindow.D(),
		Replicas:    s.opts.Replicas,
	}
}

// checkExisting accepts a stream the sink did not create if it stores every
// subject the sink can publish on. Its limits are the operator's; a duplicate
// window shorter than configured is only worth a warning.
func (s *Sink) checkExisting(info *jetstream.StreamInfo) error {
	cfg := info.Config
	if cfg.Sealed {
		return &streamError{fmt.Sprintf("stream %q is sealed and accepts no messages", cfg.Name)}
	}
	ok := false
	for _, subj := range cfg.Subjects {
		if covers(subj, s.want) {
			ok = true
			break
		}
	}
	if !ok {
		return &streamError{fmt.Sprintf("stream %q exists with subjects %q, which do not cover %q (every <prefix>.<entity>.<agency>): add %q to its subjects, or change stream or subject_prefix",
			cfg.Name, cfg.Subjects, s.want, s.opts.SubjectPrefix+".>")}
	}
	if cfg.Duplicates < s.opts.DuplicateWindow.D() {
		s.log.Warn("the existing stream's duplicate window is shorter than duplicate_window; redeliveries after it are stored again",
			"stream", cfg.Name, "stream_duplicate_window", cfg.Duplicates, "duplicate_window", s.opts.DuplicateWindow.D())
	}
	return nil
}

package natssink

import (
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

const (
	// reconnectWait is the pause between rounds of reconnect attempts (nats.go adds
	// jitter). Reconnecting never gives up.
	reconnectWait = 2 * time.Second
	// pingInterval makes a dead link (a half-open TCP connection) noticed within
	// about a minute rather than nats.go's default four.
	pingInterval = 20 * time.Second
)

// connError holds the reason the last connection attempt failed.
type connError struct{ err error }

func (s *Sink) natsOptions(env pipeline.Env) ([]nats.Option, error) {
	o := s.opts
	opts := []nats.Option{
		nats.Name("egov-bridge/" + s.name),
		nats.Timeout(o.PublishTimeout.D()),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.PingInterval(pingInterval),
		nats.DrainTimeout(o.PublishTimeout.D()),
		// Credentials may be fixed (a rotated .creds file) while we keep trying.
		nats.IgnoreAuthErrorAbort(),
		nats.ConnectHandler(s.onConnect),
		nats.ReconnectHandler(s.onConnect),
		nats.DisconnectErrHandler(s.onDisconnect),
		nats.ReconnectErrHandler(s.onConnectError),
		nats.ErrorHandler(s.onAsyncError),
		nats.ClosedHandler(func(*nats.Conn) { s.closedOnce.Do(func() { close(s.closed) }) }),
	}
	resolve := func(p string) string {
		if env.Resolve != nil {
			return env.Resolve(p)
		}
		return p
	}
	switch {
	case o.CredentialsFile != "":
		p := resolve(o.CredentialsFile)
		if err := readable(p); err != nil {
			return nil, s.errorf("credentials_file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(p))
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.TLSCAFile != "" {
		p := resolve(o.TLSCAFile)
		if err := readable(p); err != nil {
			return nil, s.errorf("tls_ca_file: %w", err)
		}
		opts = append(opts, nats.RootCAs(p))
	}
	return opts, nil
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

func (s *Sink) notConnected() error {
	detail := strings.ToLower(s.nc.Status().String())
	if err := s.lastConnErr(); err != nil {
		detail += "; last error: " + err.Error()
	}
	return s.errorf("%w at %s (%s)", ErrNotConnected, s.servers, detail)
}

func (s *Sink) lastConnErr() error {
	if ce := s.connErr.Load(); ce != nil {
		return ce.err
	}
	return nil
}

// Connection events. nats.go calls these from one goroutine of its own.

func (s *Sink) onConnect(nc *nats.Conn) {
	s.connErr.Store(nil)
	// Not the URL: a token can sit where the user name goes, which Redacted keeps.
	s.log.Info("connected to NATS", "server", nc.ConnectedAddr())
}

func (s *Sink) onDisconnect(_ *nats.Conn, err error) {
	if err == nil {
		return // Close or Drain
	}
	err = s.red.Err(err)
	s.connErr.Store(&connError{err})
	s.log.Warn("disconnected from NATS; reconnecting", "err", err)
}

// onConnectError is called for every failed attempt, every reconnectWait; it logs
// only when the reason changes.
func (s *Sink) onConnectError(_ *nats.Conn, err error) {
	err = s.red.Err(err)
	prev := s.connErr.Swap(&connError{err})
	if prev == nil || prev.err == nil || prev.err.Error() != err.Error() {
		s.log.Warn("cannot connect to NATS; retrying", "servers", s.servers, "err", err)
	}
}

func (s *Sink) onAsyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	s.log.Warn("NATS reported an error", "err", s.red.Err(err))
}

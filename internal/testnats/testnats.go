// Package testnats gives tests a fresh JetStream stream on the real NATS server,
// a way to read back what a stream holds, and a proxy that can cut the connection.
//
// The server is EGOV_TEST_NATS_URL, default nats://127.0.0.1:4222, with JetStream
// enabled. When it cannot be reached the test fails if CI=true and is skipped
// otherwise, with a message that says what is missing.
package testnats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/egov-bridge/egov-bridge/internal/testsvc"
)

// DefaultURL is used when EGOV_TEST_NATS_URL is unset.
const DefaultURL = "nats://127.0.0.1:4222"

// timeout bounds every call the helpers make to the server.
const timeout = 10 * time.Second

// URL returns the server URL, failing or skipping the test when the server is
// unreachable or has no JetStream.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("EGOV_TEST_NATS_URL")
	if u == "" {
		u = DefaultURL
	}
	missing := "NATS is not reachable"
	nc, err := nats.Connect(u, nats.Timeout(3*time.Second), nats.NoReconnect())
	if err == nil {
		missing = "NATS has no JetStream (start nats-server with -js)"
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
		}
		nc.Close()
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", missing, err)
	}
	testsvc.Require(t, "NATS with JetStream", redact(u), "set EGOV_TEST_NATS_URL or start nats-server -js", err)
	return u
}

// Conn connects to the server at u and closes the connection when the test ends.
func Conn(t testing.TB, u string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(u, nats.Timeout(3*time.Second))
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", redact(u), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Stream returns a unique stream name and subject prefix for one test, and deletes
// the stream when the test ends. It does not create the stream: that is the code
// under test's job (or the test's, with Conn).
func Stream(t testing.TB) (name, prefix string) {
	t.Helper()
	u := URL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	name, prefix = "EGT_"+strings.ToUpper(id), "egt."+id
	t.Cleanup(func() {
		nc, err := nats.Connect(u, nats.Timeout(3*time.Second), nats.NoReconnect())
		if err != nil {
			t.Logf("cannot delete stream %s: %v", name, err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Logf("delete stream %s: %v", name, err)
		}
	})
	return name, prefix
}

// Messages reads every message the stream holds, from the first, with an ordered
// (ephemeral) consumer. It reads until it has as many as the stream's message
// count when called, so it never waits for messages that will not come.
func Messages(t testing.TB, u, stream string) []jetstream.Msg {
	t.Helper()
	_, js := Conn(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	want := int(info.State.Msgs)
	if want == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Fatalf("ordered consumer on %s: %v", stream, err)
	}
	out := make([]jetstream.Msg, 0, want)
	for len(out) < want {
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d messages from %s before timing out", len(out), want, stream)
		}
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(timeout))
		if err != nil {
			t.Fatalf("fetch from %s: %v", stream, err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("fetch from %s: %v", stream, err)
		}
	}
	return out
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

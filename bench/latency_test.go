package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// The proxy passes every byte on, in order, both ways, and a round trip through
// it takes at least the round trip it adds.
func TestDelayProxyAddsItsRoundTripAndKeepsTheBytes(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) //nolint:errcheck // ends when the client closes
	}()
	const rtt = 30 * time.Millisecond
	p, err := startDelayProxy(echo.Addr().String(), rtt)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("read %q, %v; want ping", got, err)
	}
	if took := time.Since(start); took < rtt {
		t.Errorf("a round trip took %s, less than the %s the proxy adds", took, rtt)
	}

	// A megabyte each way in many writes comes back whole, in order.
	want := make([]byte, 1<<20)
	rand.Read(want)
	go func() {
		for b := want; len(b) > 0; b = b[min(len(b), 1000):] {
			if _, err := c.Write(b[:min(len(b), 1000)]); err != nil {
				return
			}
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, want) {
		t.Fatalf("%d bytes came back, not the %d sent in order", len(back), len(want))
	}
}

// A failed run's note quotes the line of its log that says why.
func TestFailureLineIsTheLastError(t *testing.T) {
	for _, c := range []struct{ log, want string }{
		{"level=INFO msg=start\nlevel=ERROR msg=a\nlevel=ERROR msg=b\nlevel=INFO msg=end\n", "level=ERROR msg=b"},
		{"level=INFO msg=start\negov-bridge: some deliveries failed\n", "egov-bridge: some deliveries failed"},
		{"one line", "one line"},
	} {
		if got := failureLine(c.log); got != c.want {
			t.Errorf("failureLine(%q) = %q, want %q", c.log, got, c.want)
		}
	}
}

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"
)

// delayProxy stands between the readers of the agency table and PostgreSQL and
// holds every chunk of bytes, each way, for half a round trip before passing it
// on: an agency database across a WAN rather than on the same machine. It adds
// latency, not a bandwidth limit: chunks keep flowing while earlier ones wait.
type delayProxy struct {
	ln     net.Listener
	target string
	oneWay time.Duration
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// startDelayProxy listens on 127.0.0.1:0 and forwards to target (host:port).
func startDelayProxy(target string, rtt time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("latency proxy: %w", err)
	}
	p := &delayProxy{ln: ln, target: target, oneWay: rtt / 2}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// dsn is dsn (a URL) with its host replaced by the proxy's address.
func (p *delayProxy) dsn(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("latency proxy: -dsn must be a URL with a host to put the proxy in front of")
	}
	u.Host = p.ln.Addr().String()
	return u.String(), nil
}

func (p *delayProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(s, c)
		go p.pump(c, s)
	}
}

// chunk is bytes read at one moment, due at another.
type chunk struct {
	data []byte
	due  time.Time
}

// pump copies from src to dst, each chunk oneWay after it was read, in order.
func (p *delayProxy) pump(dst, src net.Conn) {
	defer p.wg.Done()
	queue := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range queue {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				for range queue { // drain so the reader is not blocked
				}
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			queue <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(p.oneWay)}
		}
		if err != nil {
			close(queue)
			<-done
			// Pass the end on, so the other side sees its peer close.
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				tc.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
	}
}

// close stops listening, ends every connection and waits for the pumps.
func (p *delayProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// sourceDSN is the DSN the readers of the agency table use: dsn itself, or
// through a proxy adding -source-rtt.
func (b *bench) sourceDSN(dsn string) (string, error) {
	if b.o.sourceRTT <= 0 {
		return dsn, nil
	}
	if b.proxy == nil {
		u, err := url.Parse(dsn)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("-source-rtt needs -dsn as a URL with a host")
		}
		if b.proxy, err = startDelayProxy(u.Host, b.o.sourceRTT); err != nil {
			return "", err
		}
	}
	return b.proxy.dsn(dsn)
}

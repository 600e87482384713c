package engine

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenMistakesAreReportedWithTheirPlace(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.yaml": testMapping,
		"c.yaml": `http:
  listen: "127.0.0.1:0"
  metrics: private
  tokens:
    - { name: a, token: short, role: viewer }
    - { name: b, token: "a-long-enough-token-1", sha256: "00", role: viewer }
    - { name: c, sha256: "not-hex", role: operator }
    - { name: d, token: "a-long-enough-token-2", role: boss }
    - { name: d, sha256: "` + strings.Repeat("ab", 32) + `", role: admin }
    - { name: e, role: admin }
sources:
  - { name: motcua, type: memory, table: HoSo, mapping: m.yaml }
`})
	_, err := LoadFile(filepath.Join(dir, "c.yaml"))
	if err == nil {
		t.Fatal("a config with bad tokens was accepted")
	}
	for _, want := range []string{
		"c.yaml:3:12: http.metrics: unknown setting \"private\" (want public, token or off)",
		"c.yaml:5:25: http.tokens[0].token: too short",
		"http.tokens[1].sha256: give the token or its sha256, not both",
		"http.tokens[2].sha256: want 64 hexadecimal digits",
		"http.tokens[3].role: unknown role \"boss\" (want viewer, operator or admin)",
		"http.tokens[4].name: another token is already named \"d\"",
		"http.tokens[5]: no token",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestOperationsEndpointsFollowTheirOwnSettings(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.yaml": testMapping,
		"token":  "probe-token-0123456789\n",
		"c.yaml": `store: { driver: sqlite, path: state.db }
http:
  listen: "127.0.0.1:0"
  healthz: public
  readyz: token
  metrics: off
  tokens:
    - { name: probe, token_file: token, role: viewer }
sources:
  - { name: motcua, type: memory, table: HoSo, mapping: m.yaml, schedule: "@every 1h" }
`})
	cfg, err := LoadFile(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, func() bool { return d.HTTPAddr() != "" })

	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", "http://"+d.HTTPAddr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitUntil(t, func() bool { return get("/readyz", "probe-token-0123456789") == http.StatusOK })
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", http.StatusOK},
		{"/readyz", "", http.StatusUnauthorized},
		{"/readyz", "wrong-token-0123456789", http.StatusUnauthorized},
		{"/readyz", "probe-token-0123456789", http.StatusOK},
		{"/metrics", "", http.StatusNotFound},
		{"/metrics", "probe-token-0123456789", http.StatusNotFound},
	} {
		if got := get(c.path, c.token); got != c.want {
			t.Errorf("GET %s with token %q = %d, want %d", c.path, c.token, got, c.want)
		}
	}
}

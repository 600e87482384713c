package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// copyFloor times PostgreSQL's COPY of the pipeline's SELECT to a client that
// throws the bytes away: no client can read the same rows faster, so every pipeline
// figure is reported as a multiple of it. psql is the client (lib/pq cannot COPY
// TO STDOUT); it runs the COPY runs times in one session and its \timing gives each
// one's time without the connection set-up, which is slow on some machines. It
// returns the best time and the bytes one COPY sent.
func copyFloor(ctx context.Context, dsn, table string, runs int) (time.Duration, int64, error) {
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", psqlDSN(dsn), "-c", `\timing on`}
	for range runs {
		args = append(args, "-c", "COPY ("+selectSQL(table)+") TO STDOUT")
	}
	out := &timingWriter{}
	cmd := exec.CommandContext(ctx, "psql", args...)
	cmd.Stdout = out
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("psql COPY: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if len(out.times) != runs {
		return 0, 0, fmt.Errorf("psql COPY: %d timings in its output, want %d", len(out.times), runs)
	}
	return slices.Min(out.times), out.n / int64(runs), nil
}

// timingWriter counts COPY bytes and picks psql's "Time: 123.456 ms" lines out
// of the stream, keeping only the start of the current line.
type timingWriter struct {
	n     int64
	start []byte // the current line's first bytes
	times []time.Duration
}

const timingPrefix = "Time: "

func (w *timingWriter) Write(p []byte) (int, error) {
	written := len(p)
	w.n += int64(written)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := 64 - len(w.start); room > 0 {
			w.start = append(w.start, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			break
		}
		w.endLine()
		p = p[i+1:]
	}
	return written, nil
}

func (w *timingWriter) endLine() {
	if line := string(w.start); strings.HasPrefix(line, timingPrefix) {
		f := strings.Fields(strings.TrimPrefix(line, timingPrefix))
		if len(f) >= 2 && f[1] == "ms" {
			if ms, err := strconv.ParseFloat(f[0], 64); err == nil {
				w.times = append(w.times, time.Duration(ms*float64(time.Millisecond)))
			}
		}
	}
	w.start = w.start[:0]
}

// psqlDSN drops the URL parameters libpq does not know (search_path is lib/pq's).
func psqlDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn
	}
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String()
}

// plainRecord is what the plain loop makes of a row: the mapping's fields, typed.
type plainRecord struct {
	Code          string     `json:"code"`
	ProcedureCode string     `json:"procedure_code,omitempty"`
	Procedure     string     `json:"procedure,omitempty"`
	Citizen       string     `json:"citizen"`
	Phone         string     `json:"phone,omitempty"`
	Unit          string     `json:"unit"`
	Channel       string     `json:"channel,omitempty"`
	Online        bool       `json:"online"`
	Status        int64      `json:"status"`
	ReceivedAt    *time.Time `json:"received_at,omitempty"`
	DueAt         *time.Time `json:"due_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

type plainLine struct {
	Key    string      `json:"key"`
	Hash   string      `json:"hash"`
	Record plainRecord `json:"record"`
}

var plainChannels = map[string]string{"1": "trực tiếp", "2": "trực tuyến", "3": "bưu chính công ích"}

// plainLoop is the reference a hand-written program sets: read the same SELECT with
// lib/pq in one query, normalise each row the way the mapping does (trim, upper,
// NFC, phone to 84…, portal times to UTC), hash it with SHA-256 and write it as a
// JSON line to a file. No state, no diff, no outbox: what is left between this and
// the pipeline is what the pipeline's guarantees cost.
func plainLoop(ctx context.Context, dsn, table, outPath string, zone *time.Location) (time.Duration, int, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	// Connected before the clock starts, as the floor's figure has no set-up either.
	if err := db.PingContext(ctx); err != nil {
		return 0, 0, fmt.Errorf("plain loop: %w", err)
	}
	start := time.Now()
	f, err := os.Create(outPath)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 256<<10)
	rows, err := db.QueryContext(ctx, selectSQL(table))
	if err != nil {
		return 0, 0, fmt.Errorf("plain loop: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var code, procCode, proc, citizen, phone, unit, received, due, finished sql.NullString
		var channel, status sql.NullInt64
		var updated time.Time
		if err := rows.Scan(&code, &procCode, &proc, &citizen, &phone, &unit, &channel, &status,
			&received, &due, &finished, &updated); err != nil {
			return 0, n, fmt.Errorf("plain loop: %w", err)
		}
		ch := fmt.Sprint(channel.Int64)
		rec := plainRecord{
			Code:          strings.ToUpper(nfc(strings.TrimSpace(code.String))),
			ProcedureCode: nfc(strings.TrimSpace(procCode.String)),
			Procedure:     nfc(strings.Join(strings.Fields(proc.String), " ")),
			Citizen:       nfc(strings.TrimSpace(citizen.String)),
			Phone:         normalisePhone(phone.String),
			Unit:          strings.ToUpper(nfc(strings.TrimSpace(unit.String))),
			Channel:       plainChannels[ch],
			Online:        ch == "2",
			Status:        status.Int64,
			ReceivedAt:    portalUTC(received.String, zone),
			DueAt:         portalUTC(due.String, zone),
			FinishedAt:    portalUTC(finished.String, zone),
			UpdatedAt:     time.Date(updated.Year(), updated.Month(), updated.Day(), updated.Hour(), updated.Minute(), updated.Second(), updated.Nanosecond(), zone).UTC(),
		}
		body, err := json.Marshal(rec)
		if err != nil {
			return 0, n, err
		}
		sum := sha256.Sum256(body)
		line, err := json.Marshal(plainLine{Key: rec.Code, Hash: hex.EncodeToString(sum[:]), Record: rec})
		if err != nil {
			return 0, n, err
		}
		w.Write(line)
		w.WriteByte('\n')
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, n, fmt.Errorf("plain loop: %w", err)
	}
	if err := w.Flush(); err != nil {
		return 0, n, err
	}
	return time.Since(start), n, nil
}

func nfc(s string) string {
	if norm.NFC.IsNormalString(s) {
		return s
	}
	return norm.NFC.String(s)
}

// normalisePhone keeps the digits and writes a Vietnamese mobile as 84xxxxxxxxx;
// anything that is not 9 national digits is dropped.
func normalisePhone(s string) string {
	d := strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) {
			return r
		}
		return -1
	}, s)
	switch {
	case strings.HasPrefix(d, "84") && len(d) == 11:
		d = d[2:]
	case strings.HasPrefix(d, "0") && len(d) == 10:
		d = d[1:]
	}
	if len(d) != 9 {
		return ""
	}
	return "84" + d
}

func portalUTC(s string, zone *time.Location) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.ParseInLocation("20060102150405", s, zone)
	if err != nil {
		return nil
	}
	t = t.UTC()
	return &t
}

// Package demo creates the demo agency database and plays a clerk at the one-stop
// shop: every few seconds it moves some dossiers to their next status, the way a
// real agency system would, so that a newcomer sees change events appear.
// It exists for `egov-bridge run` on configs/demo.yaml only.
package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the demo agency database is SQLite
)

// Prepare creates and seeds the demo database unless it already has the HoSo table.
func Prepare(ctx context.Context, path string, seed []byte) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("demo: %w", err)
	}
	db, err := open(path)
	if err != nil {
		return false, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'HoSo'`).Scan(&n); err != nil {
		return false, fmt.Errorf("demo: inspect %s: %w", path, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := db.ExecContext(ctx, string(seed)); err != nil {
		return false, fmt.Errorf("demo: seed %s: %w", path, err)
	}
	return true, nil
}

func open(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("demo: open %s: %w", path, err)
	}
	return db, nil
}

// next is the status a clerk moves a dossier to; several choices mean any of them.
var next = map[int][]int{
	1: {2},          // new -> received
	2: {4, 4, 3},    // received -> in progress (sometimes rejected at intake)
	4: {9, 9, 5, 6}, // in progress -> result ready, supplement requested or fees due
	5: {4},          // supplement provided -> in progress
	6: {4},          // fees paid -> in progress
	9: {10},         // result ready -> returned to the citizen
}

// Activity advances `changes` dossiers every `every` until ctx ends. Times are
// written as the agency would: local wall clock in zone.
func Activity(ctx context.Context, path string, every time.Duration, changes int, zone *time.Location, clock func() time.Time, log *slog.Logger) error {
	db, err := open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := Step(ctx, db, changes, clock().In(zone))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("demo activity failed", "err", err)
			continue
		}
		log.Debug("demo activity", "dossiers_advanced", n)
	}
}

// Step moves up to n open dossiers to a next status and stamps NgayCapNhat.
func Step(ctx context.Context, db *sql.DB, n int, now time.Time) (int, error) {
	rows, err := db.QueryContext(ctx, `SELECT MaHoSo, TrangThaiHoSo FROM HoSo WHERE TrangThaiHoSo IN (1, 2, 4, 5, 6, 9) ORDER BY random() LIMIT ?`, n)
	if err != nil {
		return 0, err
	}
	type pick struct {
		code   string
		status int
	}
	var picks []pick
	for rows.Next() {
		var p pick
		if err := rows.Scan(&p.code, &p.status); err != nil {
			rows.Close()
			return 0, err
		}
		picks = append(picks, p)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	stamp := now.Format("2006-01-02 15:04:05")
	for _, p := range picks {
		choices := next[p.status]
		to := choices[rand.IntN(len(choices))]
		var finished any
		if to == 9 || to == 3 {
			finished = now.Format("20060102150405")
		}
		if _, err := db.ExecContext(ctx,
			`UPDATE HoSo SET TrangThaiHoSo = ?, NgayCapNhat = ?, NgayKetThucXuLy = COALESCE(?, NgayKetThucXuLy) WHERE MaHoSo = ?`,
			to, stamp, finished, p.code); err != nil {
			return 0, err
		}
	}
	return len(picks), nil
}

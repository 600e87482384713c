package store

import (
	"context"
	"fmt"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
)

type auditRow struct {
	ID     int64  `db:"id"`
	At     dbTime `db:"at"`
	Actor  string `db:"actor"`
	Action string `db:"action"`
	Detail string `db:"detail"`
}

// Audit records an operator action.
func (s *sqlStore) Audit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)`),
		s.d.timeArg(e.At), pgtext.Text(e.Actor), pgtext.Text(e.Action), pgtext.Text(e.Detail))
	if err != nil {
		return fmt.Errorf("store: write audit log: %w", err)
	}
	return nil
}

// AuditLog returns the limit most recent entries (all when limit <= 0), oldest first.
func (s *sqlStore) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	var rows []auditRow
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT id, at, actor, action, detail FROM audit_log ORDER BY id DESC`+limitClause(limit))); err != nil {
		return nil, fmt.Errorf("store: read audit log: %w", err)
	}
	out := make([]AuditEntry, len(rows))
	for i, r := range rows {
		out[len(rows)-1-i] = AuditEntry{ID: r.ID, At: r.At.Time, Actor: r.Actor, Action: r.Action, Detail: r.Detail}
	}
	return out, nil
}

// ResolveQuarantine deletes quarantine entries whose rows now map cleanly.
func (s *sqlStore) ResolveQuarantine(ctx context.Context, ids []int64) (int, error) {
	n := 0
	err := forEachIn(s.d, "id", ids, func(cond string, args []any) error {
		res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM quarantine WHERE `+cond), args...)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		n += int(k)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: resolve quarantine: %w", err)
	}
	return n, nil
}

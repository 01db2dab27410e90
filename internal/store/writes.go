package store

import (
	"context"
	"fmt"
	"time"

	"github.com/shipbot/shipbot/internal/pacing"
)

// TakeWrite implements pacing.Ledger: the installation's writes of the
// last hour are rows, so every process sharing the database paces under
// the same windows, and a restart remembers the minute before it. The
// decision is pacing.Wait's. SQLite's one writer makes each take atomic;
// PostgreSQL's override adds a lock.
func (s *queries) TakeWrite(ctx context.Context, installation int64, now time.Time, lim pacing.Limits) (time.Duration, error) {
	return s.takeWrite(ctx, installation, now, lim, nil)
}

// takeWrite is TakeWrite with lock run first in the transaction.
func (s *queries) takeWrite(ctx context.Context, installation int64, now time.Time, lim pacing.Limits, lock func(sqlTx) error) (time.Duration, error) {
	var wait time.Duration
	err := s.tx(ctx, func(t sqlTx) error {
		if lock != nil {
			if err := lock(t); err != nil {
				return err
			}
		}
		hourAgo := ms(now.Add(-time.Hour - pacing.Margin))
		if _, err := t.ExecContext(ctx, `DELETE FROM github_writes WHERE installation = ? AND at_ms <= ?`, installation, hourAgo); err != nil {
			return err
		}
		rows, err := t.QueryContext(ctx, `SELECT at_ms FROM github_writes WHERE installation = ?`, installation)
		if err != nil {
			return err
		}
		var taken []time.Time
		for rows.Next() {
			var at int64
			if err := rows.Scan(&at); err != nil {
				rows.Close()
				return err
			}
			taken = append(taken, fromMS(at))
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if wait = pacing.Wait(taken, now, lim); wait > 0 {
			return nil
		}
		_, err = t.ExecContext(ctx, `INSERT INTO github_writes (installation, at_ms) VALUES (?, ?)`, installation, ms(now))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("take a GitHub write slot of installation %d: %w", installation, err)
	}
	return wait, nil
}

// TakeWrite implements pacing.Ledger; replicas taking slots of one
// installation at once go one after the other on an advisory lock, so
// none admits a write the other has just taken.
func (s *Postgres) TakeWrite(ctx context.Context, installation int64, now time.Time, lim pacing.Limits) (time.Duration, error) {
	return s.takeWrite(ctx, installation, now, lim, func(t sqlTx) error {
		_, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock(`+lockKey+`)`, fmt.Sprintf("shipbot.github_writes:%d", installation))
		return err
	})
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/shipbot/shipbot/internal/pacing"
)

// TakeWrite implements pacing.Ledger: the installation's writes of the
// last hour are rows, so every process sharing the database paces under
// the same windows, and a restart remembers the minute before it. The
// decision is pacing.Window.Wait's. SQLite's one writer makes each take atomic;
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
		// Per window, only the limit-th newest write decides (pacing's
		// Window.Wait): one indexed row each, not the hour's every write
		// (up to 500 rows read on every take, a tenth of a burst's CPU).
		for _, w := range lim.Windows() {
			var at int64
			err := t.QueryRowContext(ctx, `SELECT at_ms FROM github_writes WHERE installation = ? AND at_ms > ? AND at_ms <= ?
				ORDER BY at_ms DESC LIMIT 1 OFFSET ?`, installation, ms(w.From(now)), ms(now), w.Limit-1).Scan(&at)
			full := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			wait = max(wait, w.Wait(fromMS(at), full, now))
		}
		if wait > 0 {
			return nil
		}
		_, err := t.ExecContext(ctx, `INSERT INTO github_writes (installation, at_ms) VALUES (?, ?)`, installation, ms(now))
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

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Group commit for the inbox. Every acknowledged delivery costs an fsync;
// when deliveries arrive together (a merge sends two, a busy organisation
// many), one transaction with one fsync carries all of them, so the intake
// rate is not capped at one fsync per delivery. A lone delivery goes
// through at once: nothing waits to fill a batch.

// maxBatch bounds one group commit, so the first delivery in it is not
// held behind an unbounded number of others.
const maxBatch = 64

type saveReq struct {
	d   Delivery
	res chan saveRes
}

type saveRes struct {
	inserted bool
	err      error
}

func (s *SQLite) committer() {
	defer close(s.commitDone)
	for {
		var first saveReq
		select {
		case first = <-s.saves:
		case <-s.stop:
			return
		}
		batch := []saveReq{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.saves:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
	}
}

func (s *SQLite) commitBatch(batch []saveReq) {
	results, err := s.insertBatch(batch)
	if err != nil && len(batch) > 1 {
		// One bad row must not fail its neighbours: take them one by one.
		for _, r := range batch {
			res, err := s.insertBatch([]saveReq{r})
			r.res <- saveResult(res, err)
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			r.res <- saveRes{err: err}
			continue
		}
		r.res <- saveRes{inserted: results[i]}
	}
}

func saveResult(res []bool, err error) saveRes {
	if err != nil {
		return saveRes{err: err}
	}
	return saveRes{inserted: res[0]}
}

// insertBatch writes the batch in one transaction and reports, per row,
// whether it was new.
func (s *SQLite) insertBatch(batch []saveReq) ([]bool, error) {
	ctx := context.Background()
	out := make([]bool, len(batch))
	err := s.tx(ctx, func(t *sql.Tx) error {
		stmt, err := t.PrepareContext(ctx, `INSERT INTO deliveries
			(id, event, action, repo, installation, payload, status, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, r := range batch {
			d := r.d
			res, err := stmt.ExecContext(ctx, d.ID, d.Event, d.Action, d.Repo, d.Installation, d.Payload, d.Status, ms(d.ReceivedAt))
			if err != nil {
				return fmt.Errorf("delivery %s: %w", d.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("delivery %s: %w", d.ID, err)
			}
			out[i] = n == 1
		}
		return nil
	})
	return out, err
}

var errClosed = errors.New("store closed")

// SaveDelivery implements Inbox. It returns once the delivery is committed
// (fsync'd), possibly together with others that arrived at the same time.
func (s *SQLite) SaveDelivery(ctx context.Context, d Delivery) (bool, error) {
	if d.Status == "" {
		d.Status = StatusPending
	}
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = time.Now()
	}
	req := saveReq{d: d, res: make(chan saveRes, 1)}
	select {
	case s.saves <- req:
	case <-s.stop:
		return false, fmt.Errorf("save delivery %s: %w", d.ID, errClosed)
	case <-ctx.Done():
		return false, fmt.Errorf("save delivery %s: %w", d.ID, ctx.Err())
	}
	// Once handed over the row may be written even if ctx ends: waiting for
	// the answer is cheap and keeps the result truthful.
	var res saveRes
	select {
	case res = <-req.res:
	case <-s.commitDone:
		// Closed while queued: not acknowledged, so GitHub redelivers.
		select {
		case res = <-req.res:
		default:
			res.err = errClosed
		}
	}
	if res.err != nil {
		return false, fmt.Errorf("save delivery %s: %w", d.ID, res.err)
	}
	return res.inserted, nil
}

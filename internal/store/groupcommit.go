package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Group commit for the inbox. Every acknowledged delivery costs an fsync;
// when deliveries arrive together (a merge sends two, a busy organisation
// many), one transaction with one fsync carries all of them, so the intake
// rate is not capped at one fsync per delivery. A lone delivery goes
// through at once: nothing waits to fill a batch.
//
// The committer also checkpoints the WAL, between commits, so that a
// checkpoint never runs while a delivery's commit is in flight (see the
// SQLite type). Measured on a 2-vCPU VM at 200 deliveries/s of 25 KB each
// (BenchmarkIntakeAt200PerSecond), a checkpoint beside the writer every
// second (6 MB of WAL) took 10-40 ms and slowed the commits it overlapped;
// checkpoints of about 0.5 MB between commits take about 2 ms, which fits
// between deliveries, and delay nothing that is already waiting. Larger
// thresholds (1-4 MB) made the deliveries arriving during a checkpoint wait
// longer. Smaller ones (0.25 MB) measured no better, and restart the WAL
// more often: the first commit after a restart pays a second fsync, for
// the WAL header.

// maxBatch bounds one group commit, so the first delivery in it is not
// held behind an unbounded number of others.
const maxBatch = 64

var (
	// checkpointPages is how much WAL (in pages, estimated) the committer
	// lets accumulate before it checkpoints at its next idle moment:
	// about 0.5 MB, some 14 deliveries of GitHub's merged-PR size.
	checkpointPages = 128
	// checkpointMaxPages bounds the WAL under sustained load, when the
	// committer is never idle: past it the checkpoint runs even though a
	// delivery is waiting.
	checkpointMaxPages = 8 * checkpointPages
	// checkpointEvery makes a checkpoint due at the next idle moment even
	// below checkpointPages, for the WAL written by other transactions
	// (runs, rollouts) that the committer does not see.
	checkpointEvery = time.Second
)

const insertDeliverySQL = `INSERT INTO deliveries
	(id, event, action, repo, installation, payload, status, received_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`

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
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		var first saveReq
		select {
		case first = <-s.saves:
		case <-tick.C:
			s.ckptDue = true
			s.maybeCheckpoint()
			continue
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
		for _, r := range batch {
			s.walPages += walPages(r.d)
		}
		s.maybeCheckpoint()
	}
}

// walPages estimates the WAL frames a delivery's insert adds: its payload
// in overflow pages, plus the table and index leaves it lands in.
func walPages(d Delivery) int { return 3 + len(d.Payload)/4096 }

// maybeCheckpoint checkpoints once enough WAL has accumulated (or the
// periodic one is due) and no delivery is waiting for the writer.
func (s *SQLite) maybeCheckpoint() {
	switch {
	case s.walPages >= checkpointMaxPages:
	case len(s.saves) > 0:
		return // a delivery is waiting: it goes first
	case s.walPages < checkpointPages && !s.ckptDue:
		return
	}
	s.walPages, s.ckptDue = 0, false
	// On the writer connection, so it cannot overlap a commit. PASSIVE
	// copies the frames no reader still needs and never waits for readers;
	// what it leaves is copied by a later round. An error here (say, a
	// checkpoint by another process holding the lock) is retried then too.
	_, _ = s.w.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
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
	// The statement stays prepared (the store's statement cache): parsing
	// it for every commit is measurable next to a sub-millisecond commit.
	err := s.tx(ctx, func(t sqlTx) error {
		for i, r := range batch {
			d := r.d
			res, err := t.ExecContext(ctx, insertDeliverySQL, d.ID, d.Event, d.Action, d.Repo, d.Installation, d.Payload, d.Status, ms(d.ReceivedAt))
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

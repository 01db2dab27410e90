package store

import (
	"context"
	"fmt"
	"time"
)

// PayloadPruner drops the payloads of processed deliveries
// (SHIPBOT_RETENTION). The service prunes through it when its store
// implements it.
type PayloadPruner interface {
	// PruneDeliveryPayloads empties the payload of every delivery that is
	// done, failed or ignored and was received before receivedBefore,
	// keeping the row (id, event, status, times, error), batch rows per
	// transaction. It returns how many payloads it dropped.
	PruneDeliveryPayloads(ctx context.Context, receivedBefore time.Time, batch int) (int64, error)
}

// DefaultPruneBatch is how many payloads one pruning transaction drops.
// Freeing a payload reads its overflow pages, so a batch of 25 MB payloads
// costs a moment; small batches let deliveries, which wait for the same
// writer connection, in between.
const DefaultPruneBatch = 32

var _ PayloadPruner = (*SQLite)(nil)

// PruneDeliveryPayloads implements PayloadPruner.
func (s *SQLite) PruneDeliveryPayloads(ctx context.Context, receivedBefore time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	var total int64
	for {
		// The conditions are the partial index's, word for word, so that
		// SQLite can use it (INDEXED BY makes that an error otherwise).
		res, err := s.w.ExecContext(ctx, `UPDATE deliveries SET payload = NULL WHERE seq IN (
			SELECT seq FROM deliveries INDEXED BY deliveries_payload_kept
			WHERE payload IS NOT NULL AND status IN ('done', 'failed', 'ignored') AND received_at < ?
			LIMIT ?)`, ms(receivedBefore), batch)
		if err != nil {
			return total, fmt.Errorf("prune delivery payloads: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune delivery payloads: %w", err)
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

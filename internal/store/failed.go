package store

import (
	"context"
	"fmt"
	"time"
)

// FailedDelivery is a delivery whose processing failed for good (its
// retries exhausted, or a failure retrying cannot fix), as an operator
// needs to see it.
type FailedDelivery struct {
	ID        string // X-GitHub-Delivery
	Event     string
	Action    string
	Repo      string
	Attempts  int
	LastError string
	// ReceivedAt is when GitHub delivered it, FailedAt when shipbot gave up.
	ReceivedAt, FailedAt time.Time
}

// FailedDeliveries implements Dashboards.
func (s *queries) FailedDeliveries(ctx context.Context, limit int) ([]FailedDelivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, event, action, repo, attempts, last_error, received_at, finished_at
		FROM deliveries WHERE status = 'failed' ORDER BY finished_at DESC, seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list failed deliveries: %w", err)
	}
	defer rows.Close()
	var out []FailedDelivery
	for rows.Next() {
		var d FailedDelivery
		var received, failed int64
		if err := rows.Scan(&d.ID, &d.Event, &d.Action, &d.Repo, &d.Attempts, &d.LastError, &received, &failed); err != nil {
			return nil, fmt.Errorf("list failed deliveries: %w", err)
		}
		d.ReceivedAt, d.FailedAt = fromMS(received), fromMS(failed)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list failed deliveries: %w", err)
	}
	return out, nil
}

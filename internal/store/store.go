// Package store persists shipbot's state: the webhook inbox now, runs and
// stage executions as the engine lands. Callers depend on the small
// interfaces here, never on SQL, so a PostgreSQL implementation can follow
// the SQLite one without touching them.
package store

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/shipbot/shipbot/internal/pacing"
)

// Delivery statuses.
const (
	StatusPending = "pending" // accepted, waiting for the worker
	StatusDone    = "done"    // processed
	StatusFailed  = "failed"  // processing failed past its retry budget
	StatusIgnored = "ignored" // acknowledged, not acted on (no payload kept)
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Delivery is one GitHub webhook delivery as the inbox keeps it.
type Delivery struct {
	Seq          int64
	ID           string // X-GitHub-Delivery
	Event        string // X-GitHub-Event
	Action       string
	Repo         string // owner/name
	Installation int64
	Payload      []byte
	Status       string
	Attempts     int
	LastError    string
	ReceivedAt   time.Time
}

// EventFilter picks deliveries by event (X-GitHub-Event), so that workers
// can drain disjoint parts of the inbox: /shipbot commands in one lane,
// merges in another. The zero value takes every event.
type EventFilter struct {
	// Only, when not empty, takes just these events.
	Only []string
	// Except never takes these events.
	Except []string
}

// Takes reports whether the filter takes event.
func (f EventFilter) Takes(event string) bool {
	if len(f.Only) > 0 && !slices.Contains(f.Only, event) {
		return false
	}
	return !slices.Contains(f.Except, event)
}

// Inbox is the durable queue between the webhook endpoint and the worker.
type Inbox interface {
	// SaveDelivery writes d durably. It reports false, without error, when a
	// delivery with the same ID already exists (a GitHub redelivery).
	SaveDelivery(ctx context.Context, d Delivery) (bool, error)
	// ClaimDeliveries leases up to limit pending deliveries of the events
	// filter takes, oldest first, to owner until now+lease. Deliveries whose
	// lease expired (their worker died) are claimable again.
	ClaimDeliveries(ctx context.Context, owner string, lease time.Duration, limit int, filter EventFilter) ([]Delivery, error)
	// RenewClaims extends owner's claims on the deliveries ids, still
	// pending, to now+lease; a worker renews what it holds while it works,
	// so the claim can be short and a dead worker's deliveries soon
	// claimable again. It returns the ids owner no longer holds (another
	// claimed them after the claim expired, or they were finished).
	RenewClaims(ctx context.Context, owner string, ids []string, lease time.Duration) (lost []string, err error)
	// FinishDelivery records the outcome of a claimed delivery: status is
	// StatusDone or StatusFailed. With StatusPending it releases the claim and
	// schedules another attempt no earlier than retryAt.
	FinishDelivery(ctx context.Context, id, status, lastError string, retryAt time.Time) error
	// GetDelivery reads one delivery by ID.
	GetDelivery(ctx context.Context, id string) (Delivery, error)
	// InboxDepth counts deliveries not yet processed.
	InboxDepth(ctx context.Context) (int, error)
}

// Store is everything the service persists.
type Store interface {
	Inbox
	Runs
	Leases
	CheckRuns
	Comments
	Rollouts
	Deployments
	Commands
	Dashboards
	Events
	// The installations' GitHub write slots (see the pacing package).
	pacing.Ledger
	// Ready reports whether the database answers, its schema is current and
	// a write commits (a full or read-only disk fails it).
	Ready(ctx context.Context) error
	Close() error
}

package chatops

import (
	"context"

	"github.com/shipbot/shipbot/internal/pipeline"
)

// Command is one /shipbot command as a user wrote it.
type Command struct {
	// Verb is deploy, retry, rollback, freeze, unfreeze, status or help.
	Verb string
	// Stage names the stage of deploy, retry and rollback.
	Stage string
	// Force asks deploy to pass window and alarm blockers (admins only).
	Force bool
	// Reason is freeze's free text.
	Reason string
}

// Operator carries commands out on the merged pull request's rollout: the
// rollout engine, spoken to in its own command type. The text it returns
// is shown to the user, as GitHub Markdown; so is a *pipeline.Refusal's
// reason: outside text in either (a freeze reason, a login) must be
// escaped with markdown.Escape. Any other error is the operator's failure
// (the store is down, …).
type Operator interface {
	Do(ctx context.Context, c pipeline.Command) (string, error)
}

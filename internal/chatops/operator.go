package chatops

import (
	"context"

	"github.com/shipbot/shipbot/internal/pipeline"
)

// Command is one /shipbot command as a user wrote it.
type Command struct {
	// Verb is deploy, retry, rollback, freeze, unfreeze, approve, reject,
	// status or help.
	Verb string
	// Stage names the stage of deploy, retry, rollback, approve and
	// reject: "prod", or "api/prod" for stage prod of pipeline api in a
	// repository with several pipelines.
	Stage string
	// Force asks deploy to pass window and alarm blockers (admins only).
	Force bool
	// Reason is freeze's and reject's free text.
	Reason string
	// To is the version rollback restores ("v1.2.0" or "1.2.0"); empty
	// for the stage's previous one.
	To string
}

// Operator carries commands out on the merged pull request's rollout: the
// rollout engine, spoken to in its own command type. The text it returns
// is shown to the user, as GitHub Markdown; so is a *pipeline.Refusal's
// reason: outside text in either (a freeze reason, a login) must be
// escaped with markdown.Escape. Any other error is the operator's failure
// (the store is down, …).
type Operator interface {
	Do(ctx context.Context, c pipeline.Command) (string, error)
	// Approval says whether stage of the pull request's rollout needs an
	// approval and who may give it, for /shipbot approve and reject: the
	// handler checks the commenter against it (AuthorizeApproval) before
	// it asks Do. A *pipeline.Refusal (no such stage, no rollout) is
	// shown to the user as Do's are; any other error is the operator's
	// failure, and the delivery is retried (nothing ran yet).
	Approval(ctx context.Context, repo string, pr int, stage string) (pipeline.Approval, error)
}

// Recorder is an Operator that puts refused commands on the audit log, as
// the engine does: who asked what, and why it was refused. A command that
// ran is on the log through the change it made.
type Recorder interface {
	Refused(ctx context.Context, c pipeline.Command, reason string)
}

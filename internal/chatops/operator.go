package chatops

import "context"

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

// Request is a command allowed to run, with who asked and where.
type Request struct {
	Command
	Repo         string // owner/name
	PR           int
	Installation int64
	Actor        string // the commenter's login
}

// Operator carries commands out on the merged pull request's rollout. The
// text it returns is shown to the user, as GitHub Markdown; so is a
// Refusal's reason: outside text in either (a freeze reason, a login) must
// be escaped with markdown.Escape. Any other error is the operator's
// failure (the store is down, …).
type Operator interface {
	Do(ctx context.Context, r Request) (string, error)
}

// Refusal is a command the operator declined, for a reason the user can act
// on ("prod was not skipped", "v1.2.0 is older than what prod runs").
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

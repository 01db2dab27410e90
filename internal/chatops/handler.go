package chatops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/markdown"
	"github.com/shipbot/shipbot/internal/pipeline"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/truncate"
	"github.com/shipbot/shipbot/internal/webhook"
)

// Clients hands out an API client per App installation (as merge.Clients;
// *github.Apps implements it).
type Clients interface {
	Installation(id int64) (*gh.Client, error)
}

// Reactions the handler leaves on a command's comment.
const (
	reactSeen   = "eyes"
	reactDone   = "+1"
	reactRefuse = "-1"
)

// Fixed answers.
const (
	notMergedText = "shipbot commands work on merged pull requests, and this one is not merged yet. " +
		"Once it is, comment again."
	failedText = "failed: shipbot could not carry out the command because of an internal error " +
		"(it is logged for the operators). Please try again in a little while."
	permissionUnreadableText = "failed: shipbot could not read your permission on this repository, " +
		"so it did not run the command."
	doneText = "Done."
)

// maxText bounds the operator's text in a reply; GitHub takes 65536
// characters per comment.
const maxText = 60000

// Handler answers /shipbot commands in comments on merged pull requests.
// Per command it costs four API calls: 👀 on the comment, the commenter's
// permission (skipped for status and help), 👍 or 👎, and one reply that
// mentions the commenter and quotes the command. Approve and reject read
// instead what the commenter's approval needs: the permission only when
// the stage names no approvers; nothing for an approver listed by login,
// for the pull request's author or for a stage that needs no approval;
// else one team membership per listed team, in order, until one says yes
// (three calls, plus one per team asked). Over the rate limit (see
// Limiter) it costs one reply for the first refused command and nothing
// for the rest.
type Handler struct {
	Clients  Clients
	Operator Operator
	// Log may be nil (nothing is logged).
	Log *slog.Logger
	// Limit rations commands per user and repository; nil means a
	// Limiter of the handler's own with the defaults.
	Limit *Limiter

	ownLimit Limiter
}

// Handles implements webhook.Handler.
func (h *Handler) Handles() []string { return []string{"issue_comment.created"} }

// event is the part of an issue_comment payload the handler reads.
type event struct {
	Comment struct {
		ID   int64  `json:"id"`
		Body string `json:"body"`
		User user   `json:"user"`
	} `json:"comment"`
	Issue struct {
		Number int `json:"number"`
		// User opened the pull request: it may not approve its stages.
		User user `json:"user"`
		// PullRequest is present only for comments on pull requests;
		// merged_at is null until the pull request is merged.
		PullRequest *struct {
			MergedAt *string `json:"merged_at"`
		} `json:"pull_request"`
	} `json:"issue"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

type user struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

// isBot is true for GitHub App users, shipbot's own among them: its replies
// quote commands and must never be taken for one.
func (u user) isBot() bool {
	return strings.EqualFold(u.Type, "Bot") || strings.HasSuffix(strings.ToLower(u.Login), "[bot]")
}

// Handle implements webhook.Handler. It returns an error (so the delivery
// is retried) only before the command ran: when GitHub cannot be reached
// for the 👀 reaction, the permission or a team membership, when the
// operator cannot say who may approve, or for the answer to a command
// that changed nothing. Once the operator was asked to run it, it returns
// nil.
func (h *Handler) Handle(ctx context.Context, d store.Delivery) error {
	var ev event
	if err := json.Unmarshal(d.Payload, &ev); err != nil {
		return webhook.Permanent(fmt.Errorf("decode %s delivery: %w", d.Event, err))
	}
	if ev.Issue.PullRequest == nil || ev.Comment.User.isBot() {
		return nil
	}
	cmd, line, found, perr := Parse(ev.Comment.Body)
	if !found {
		return nil
	}
	owner, name, ok := strings.Cut(ev.Repository.FullName, "/")
	if !ok || owner == "" || name == "" || ev.Issue.Number <= 0 || ev.Comment.ID <= 0 || ev.Comment.User.Login == "" {
		return webhook.Permanent(fmt.Errorf("%s delivery without repository, pull request, comment or commenter", d.Event))
	}
	log := h.log().With("repo", ev.Repository.FullName, "pr", ev.Issue.Number, "actor", ev.Comment.User.Login, "comment", ev.Comment.ID)
	// The payload names the commenter, so the ration is decided before any
	// API call: a flood costs GitHub one refusal, not a call per comment.
	// A retried delivery was counted on its first attempt.
	verdict := Allowed
	if d.Attempts <= 1 {
		verdict = h.limiter().Admit(ev.Repository.FullName, ev.Comment.User.Login)
	}
	if verdict == Dropped {
		log.Debug("chatops: command over the rate limit dropped")
		return nil
	}
	inst := d.Installation
	if inst == 0 {
		inst = ev.Installation.ID
	}
	client, err := h.Clients.Installation(inst)
	if err != nil {
		err = fmt.Errorf("installation %d: %w", inst, err)
		if verdict == Refused {
			// Not retried: a redelivery would be admitted unchecked.
			log.Error("chatops: answering a command over the rate limit", "err", err)
			return nil
		}
		return err
	}
	c := &conversation{
		client: client, owner: owner, name: name, pr: ev.Issue.Number,
		comment: ev.Comment.ID, actor: ev.Comment.User.Login, quote: quoteLine(line),
	}
	if verdict == Refused {
		log.Info("chatops: command over the rate limit refused; the next ones are dropped")
		// Not retried: a redelivery would be admitted unchecked.
		if err := c.reply(ctx, h.limiter().RefusalText()); err != nil {
			log.Error("chatops: answering a command over the rate limit", "err", err)
		}
		return nil
	}

	if mergedAt := ev.Issue.PullRequest.MergedAt; mergedAt == nil || *mergedAt == "" {
		log.Info("chatops: command on an unmerged pull request")
		return c.reply(ctx, notMergedText)
	}
	if err := c.react(ctx, reactSeen); err != nil {
		return err
	}
	var pe *ParseError
	if errors.As(perr, &pe) {
		log.Info("chatops: command not understood", "problem", pe.Problem)
		return c.finish(ctx, false, pe.Answer())
	}
	log = log.With("verb", cmd.Verb, "stage", cmd.Stage, "force", cmd.Force)
	if cmd.Verb == VerbHelp {
		return c.finish(ctx, true, Help)
	}
	req := pipeline.Command{Verb: pipeline.Verb(cmd.Verb), Repo: ev.Repository.FullName, PR: c.pr, Stage: cmd.Stage,
		Force: cmd.Force, Reason: cmd.Reason, To: cmd.To, Actor: c.actor}
	if IsApproval(cmd) {
		answered, err := h.authorizeApproval(ctx, c, cmd, req, ev.Issue.User.Login, log)
		if answered || err != nil {
			return err
		}
	} else if NeedsPermission(cmd) {
		perm, err := c.permission(ctx)
		var unreadable *permissionError
		switch {
		case errors.As(err, &unreadable):
			log.Error("chatops: reading the commenter's permission", "err", err)
			return c.finish(ctx, false, permissionUnreadableText)
		case err != nil:
			return fmt.Errorf("reading %s's permission on %s: %w", c.actor, ev.Repository.FullName, err)
		}
		if r := Authorize(cmd, perm); r != nil {
			log.Info("chatops: command refused", "role", perm.RoleName, "permission", perm.Permission)
			h.refused(ctx, req, r.Reason)
			return c.finish(ctx, false, r.Reason)
		}
	}

	text, err := h.do(ctx, req)
	var refusal *pipeline.Refusal
	var done bool
	switch {
	case errors.As(err, &refusal):
		log.Info("chatops: operator refused", "reason", refusal.Reason)
		h.refused(ctx, req, refusal.Reason)
		text = refusal.Reason
	case err != nil:
		log.Error("chatops: command failed", "err", err)
		text = failedText
	default:
		log.Info("chatops: command done")
		done = true
		if strings.TrimSpace(text) == "" {
			text = doneText
		}
	}
	// The command ran: a retried delivery would run it again, so a failed
	// answer is logged, not returned.
	if err := c.finish(ctx, done, text); err != nil {
		log.Error("chatops: answering a command that ran", "err", err)
	}
	return nil
}

// authorizeApproval decides whether the commenter may approve or reject
// cmd's stage: it asks the operator who may (Operator.Approval), then
// AuthorizeApproval. answered is true when it refused (and answered);
// an error is returned, for the delivery to be retried, when a read
// failed in a way a retry may mend.
func (h *Handler) authorizeApproval(ctx context.Context, c *conversation, cmd Command, req pipeline.Command, author string, log *slog.Logger) (answered bool, err error) {
	repo := req.Repo
	if h.Operator == nil {
		log.Error("chatops: command failed", "err", "no operator configured")
		return true, c.finish(ctx, false, failedText)
	}
	a, err := h.Operator.Approval(ctx, repo, c.pr, cmd.Stage)
	var refusal *pipeline.Refusal
	switch {
	case errors.As(err, &refusal):
		log.Info("chatops: operator refused", "reason", refusal.Reason)
		return true, c.finish(ctx, false, refusal.Reason)
	case err != nil:
		return false, fmt.Errorf("reading who may %s %s of %s#%d: %w", cmd.Verb, cmd.Stage, repo, c.pr, err)
	}
	r, err := AuthorizeApproval(ctx, cmd, a, author, Asker{Login: c.actor, Permission: c.permission, TeamMember: c.teamMember})
	var unreadable *permissionError
	switch {
	case errors.As(err, &unreadable):
		log.Error("chatops: reading the commenter's permission", "err", err)
		return true, c.finish(ctx, false, permissionUnreadableText)
	case err != nil:
		return false, fmt.Errorf("checking whether %s may %s %s of %s#%d: %w", c.actor, cmd.Verb, cmd.Stage, repo, c.pr, err)
	case r != nil:
		log.Info("chatops: command refused", "author", author, "approvers", a.Approvers, "reason", r.Reason)
		h.refused(ctx, req, r.Reason)
		return true, c.finish(ctx, false, r.Reason)
	}
	return false, nil
}

// refused puts a refused command on the audit log, when the operator keeps
// one.
func (h *Handler) refused(ctx context.Context, req pipeline.Command, reason string) {
	if rec, ok := h.Operator.(Recorder); ok {
		rec.Refused(ctx, req, reason)
	}
}

func (h *Handler) do(ctx context.Context, r pipeline.Command) (string, error) {
	if h.Operator == nil {
		return "", errors.New("chatops: no operator configured")
	}
	return h.Operator.Do(ctx, r)
}

func (h *Handler) limiter() *Limiter {
	if h.Limit != nil {
		return h.Limit
	}
	return &h.ownLimit
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return h.Log
}

// conversation is one command's comment and the calls answering it.
type conversation struct {
	client      *gh.Client
	owner, name string
	pr          int
	comment     int64
	actor       string
	quote       string
}

func (c *conversation) react(ctx context.Context, content string) error {
	if _, _, err := c.client.Reactions.CreateIssueCommentReaction(ctx, c.owner, c.name, c.comment, content); err != nil {
		return fmt.Errorf("reacting %s to comment %d in %s/%s: %w", content, c.comment, c.owner, c.name, err)
	}
	return nil
}

// reply posts the one answer: a mention of the commenter, the command
// quoted, and text.
func (c *conversation) reply(ctx context.Context, text string) error {
	body := "@" + c.actor + "\n\n> " + c.quote + "\n\n" + truncate.Bytes(text, maxText, "…")
	if _, _, err := c.client.Issues.CreateComment(ctx, c.owner, c.name, c.pr, &gh.IssueComment{Body: &body}); err != nil {
		return fmt.Errorf("answering comment %d in %s/%s#%d: %w", c.comment, c.owner, c.name, c.pr, err)
	}
	return nil
}

// finish reacts 👍 (done) or 👎 and replies with text.
func (c *conversation) finish(ctx context.Context, done bool, text string) error {
	content := reactRefuse
	if done {
		content = reactDone
	}
	if err := c.react(ctx, content); err != nil {
		return err
	}
	return c.reply(ctx, text)
}

// permissionError is a permission read GitHub refused for good (a 4xx
// other than 404 and 429): retrying the delivery would not help.
type permissionError struct{ err error }

func (e *permissionError) Error() string { return e.err.Error() }
func (e *permissionError) Unwrap() error { return e.err }

// permission reads the commenter's role. Someone GitHub does not know as
// a user (404) has none. go-github v60 does not decode the top-level
// role_name, hence the plain request.
func (c *conversation) permission(ctx context.Context) (Permission, error) {
	u := fmt.Sprintf("repos/%s/%s/collaborators/%s/permission",
		url.PathEscape(c.owner), url.PathEscape(c.name), url.PathEscape(c.actor))
	req, err := c.client.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return Permission{}, err
	}
	var p Permission
	resp, err := c.client.Do(ctx, req, &p)
	if err != nil {
		switch code := statusCode(resp); {
		case code == http.StatusNotFound:
			return Permission{Permission: "none"}, nil
		case refusedForGood(code, err):
			return Permission{}, &permissionError{err}
		}
		return Permission{}, err
	}
	return p, nil
}

// teamMember reports whether the commenter is an active member of team
// slug of organization org (GET
// /orgs/{org}/teams/{team_slug}/memberships/{username}): 200 with state
// "active" is; "pending" (invited) and 404 are not. A 4xx that will not
// heal (403: the App lacks the organization permission "Members: read")
// is a *TeamUnreadable; anything else (5xx, network, rate limits) is
// returned for the delivery to be retried.
func (c *conversation) teamMember(ctx context.Context, org, slug string) (bool, error) {
	u := fmt.Sprintf("orgs/%s/teams/%s/memberships/%s",
		url.PathEscape(org), url.PathEscape(slug), url.PathEscape(c.actor))
	req, err := c.client.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	var m struct {
		State string `json:"state"`
	}
	resp, err := c.client.Do(ctx, req, &m)
	if err != nil {
		switch code := statusCode(resp); {
		case code == http.StatusNotFound:
			return false, nil
		case refusedForGood(code, err):
			return false, &TeamUnreadable{Team: "@" + org + "/" + slug, Status: code, Err: err}
		}
		return false, fmt.Errorf("reading %s's membership of team @%s/%s: %w", c.actor, org, slug, err)
	}
	return strings.EqualFold(m.State, "active"), nil
}

// refusedForGood reports whether GitHub's answer code to a read is one
// that retrying will not change: a 4xx other than 404 (which callers
// read as "none") and other than a rate limit (429, or a 403 that says
// it is one).
func refusedForGood(code int, err error) bool {
	var primary *gh.RateLimitError
	var secondary *gh.AbuseRateLimitError
	if errors.As(err, &primary) || errors.As(err, &secondary) {
		return false
	}
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusNotFound
}

func statusCode(resp *gh.Response) int {
	if resp == nil || resp.Response == nil {
		return 0
	}
	return resp.StatusCode
}

// maxQuote bounds the quoted command line.
const maxQuote = 200

// quoteLine makes the user's command line safe to quote in the bot's own
// comment: bounded (cut before escaping, so that no escape is cut in half),
// then escaped like all outside text: one line, no mention (an @ inside a
// quote would still notify, from the bot), no HTML (an unclosed <!-- would
// hide the answer).
func quoteLine(line string) string {
	return markdown.Escape(truncate.Bytes(line, maxQuote, "…"))
}

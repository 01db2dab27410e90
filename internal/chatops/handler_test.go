package chatops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/chatops"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
	"github.com/shipbot/shipbot/internal/pipeline"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

const (
	repo = "acme/api"
	bot  = "shipbot[bot]"

	patReaction   = "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
	patPermission = "GET /repos/{owner}/{repo}/collaborators/{username}/permission"
	patComment    = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
	patToken      = "POST /app/installations/{installation_id}/access_tokens"
)

// recorder is a fake Operator that records every request.
type recorder struct {
	mu   sync.Mutex
	reqs []pipeline.Command
	text string
	err  error
	// approvals are the stages' approval rules, by stage as asked; a
	// stage missing is refused as unknown. approvalErr fails every
	// Approval.
	approvals   map[string]pipeline.Approval
	approvalErr error
	asked       []string // stages Approval was asked about
	refusals    []string // what Refused recorded: "<actor> <command>: <reason>"
}

// Refused records a refused command, as the engine puts it on the audit
// log (chatops.Recorder).
func (r *recorder) Refused(_ context.Context, req pipeline.Command, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusals = append(r.refusals, fmt.Sprintf("%s %s %s: %s", req.Actor, req.Verb, req.Stage, reason))
}

func (r *recorder) refused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.refusals)
}

func (r *recorder) Approval(_ context.Context, repository string, pr int, stage string) (pipeline.Approval, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, fmt.Sprintf("%s#%d %s", repository, pr, stage))
	if r.approvalErr != nil {
		return pipeline.Approval{}, r.approvalErr
	}
	a, ok := r.approvals[stage]
	if !ok {
		return pipeline.Approval{}, &pipeline.Refusal{Reason: fmt.Sprintf("v1.4.2 has no stage %q; its stages are qa, prod.", stage)}
	}
	return a, nil
}

func (r *recorder) askedAbout() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asked)
}

func (r *recorder) Do(_ context.Context, req pipeline.Command) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return r.text, r.err
}

func (r *recorder) requests() []pipeline.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

type rig struct {
	gh     *githubtest.Server
	op     *recorder
	h      *chatops.Handler
	logs   *servicetest.LogBuffer
	merged int // a merged pull request
	open   int // an open one
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv := githubtest.New(githubtest.WithSchemaCheck(schemacheck.ValidateResponse))
	t.Cleanup(srv.Close)
	srv.AddRepo(repo, githubtest.RepoSpec{})
	merged := srv.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: "feat: health", Author: "alice"})
	srv.Merge(repo, merged, "alice")
	open := srv.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: "fix: typo", Author: "alice"})
	srv.SetPermission(repo, "ada", "admin")
	srv.SetPermission(repo, "mia", "maintain")
	srv.SetPermission(repo, "wendy", "write")
	srv.SetPermission(repo, "tom", "triage")
	// rita is no collaborator: read, as on any public repository.
	apps, err := ghclient.NewApps(ghclient.Options{
		BaseURL: srv.URL(), AppID: srv.AppID(), PrivateKey: srv.PrivateKeyPEM(),
		Retry: ghclient.RetryPolicy{MaxAttempts: 2, Sleep: func(context.Context, time.Duration) error { return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v := srv.SchemaViolations(); len(v) > 0 {
			t.Errorf("responses off GitHub's schema: %v", v)
		}
	})
	op := &recorder{text: "prod: retrying v1.4.2 (attempt 2)."}
	logs := &servicetest.LogBuffer{}
	h := &chatops.Handler{Clients: apps, Operator: op, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	return &rig{gh: srv, op: op, h: h, logs: logs, merged: merged, open: open}
}

// comment posts body on pr as user and hands the webhook to the handler.
func (r *rig) comment(t *testing.T, pr int, user, body string) (int64, error) {
	t.Helper()
	id := r.gh.AddComment(repo, pr, user, body)
	return id, r.deliver(r.gh.IssueCommentEvent("acme", "api", pr, id, "created"))
}

func (r *rig) deliver(payload []byte) error {
	return r.h.Handle(context.Background(), store.Delivery{
		ID: fmt.Sprintf("d-%d", time.Now().UnixNano()), Event: "issue_comment", Action: "created",
		Repo: repo, Installation: r.gh.InstallationID(), Payload: payload,
	})
}

// calls lists the API calls made, in order, without installation token
// fetches (the bars count with the token cached).
func (r *rig) calls() []string {
	var out []string
	for _, q := range r.gh.Requests() {
		if q.Pattern != patToken {
			out = append(out, q.Pattern)
		}
	}
	return out
}

// reactions are those on comment id.
func (r *rig) reactions(t *testing.T, pr int, id int64) []string {
	t.Helper()
	for _, c := range r.gh.Comments(repo, pr) {
		if c.ID == id {
			return c.Reactions
		}
	}
	t.Fatalf("no comment %d on #%d", id, pr)
	return nil
}

// replies are the bot's comments on pr.
func (r *rig) replies(pr int) []githubtest.Comment {
	var out []githubtest.Comment
	for _, c := range r.gh.Comments(repo, pr) {
		if c.User == bot {
			out = append(out, c)
		}
	}
	return out
}

// one asserts exactly one bot reply on pr, mentioning user and quoting
// the command, and returns its body.
func (r *rig) one(t *testing.T, pr int, user, quote string) string {
	t.Helper()
	rs := r.replies(pr)
	if len(rs) != 1 {
		t.Fatalf("%d bot replies; want 1: %+v", len(rs), rs)
	}
	b := rs[0].Body
	if !strings.HasPrefix(b, "@"+user+"\n") || !strings.Contains(b, "\n> "+quote+"\n") {
		t.Errorf("reply %q; want it to mention @%s and quote %q", b, user, quote)
	}
	return b
}

var (
	commandCalls = []string{patReaction, patPermission, patReaction, patComment}
	openCalls    = []string{patReaction, patReaction, patComment} // status, help, parse errors
)

func TestWriterRetries(t *testing.T) {
	r := newRig(t)
	id, err := r.comment(t, r.merged, "wendy", "Looks flaky.\n/shipbot retry prod")
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.Command{Verb: pipeline.Retry, Stage: "prod", Repo: repo, PR: r.merged, Actor: "wendy"}
	if got := r.op.requests(); len(got) != 1 || got[0] != want {
		t.Fatalf("operator got %+v; want [%+v]", got, want)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "+1"}) {
		t.Errorf("reactions %v; want eyes then +1", got)
	}
	if b := r.one(t, r.merged, "wendy", "/shipbot retry prod"); !strings.HasSuffix(b, "prod: retrying v1.4.2 (attempt 2).") {
		t.Errorf("reply %q; want the operator's text", b)
	}
	if got := r.calls(); !slices.Equal(got, commandCalls) {
		t.Errorf("API calls %v; want %v", got, commandCalls)
	}
}

func TestPermissions(t *testing.T) {
	for _, tc := range []struct {
		user, body string
		allowed    bool
		refusal    string // when refused
	}{
		{"rita", "/shipbot deploy prod", false, "needs write permission"},
		{"tom", "/shipbot rollback prod", false, "needs write permission"},
		{"wendy", "/shipbot deploy prod", true, ""},
		{"mia", "/shipbot rollback prod", true, ""},
		{"wendy", "/shipbot deploy prod --force", false, "admins only"},
		{"mia", "/shipbot deploy prod --force", false, "admins only"},
		{"ada", "/shipbot deploy prod --force", true, ""},
		{"wendy", "/shipbot freeze incident 42", false, "needs maintain permission"},
		{"mia", "/shipbot freeze incident 42", true, ""},
		{"ada", "/shipbot unfreeze", true, ""},
	} {
		t.Run(tc.user+" "+tc.body, func(t *testing.T) {
			r := newRig(t)
			r.op.text = "ok, noted."
			id, err := r.comment(t, r.merged, tc.user, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			cmd, _, _, _ := chatops.Parse(tc.body)
			reply := r.one(t, r.merged, tc.user, tc.body)
			reqs := r.op.requests()
			if tc.allowed {
				want := pipeline.Command{Verb: pipeline.Verb(cmd.Verb), Stage: cmd.Stage, Force: cmd.Force, Reason: cmd.Reason,
					Repo: repo, PR: r.merged, Actor: tc.user}
				if len(reqs) != 1 || reqs[0] != want {
					t.Errorf("operator got %+v; want [%+v]", reqs, want)
				}
				if got := r.op.refused(); len(got) != 0 {
					t.Errorf("an allowed command recorded as refused: %v", got)
				}
				if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "+1"}) {
					t.Errorf("reactions %v; want eyes, +1", got)
				}
			} else {
				if len(reqs) != 0 {
					t.Errorf("operator called with %+v; want not at all", reqs)
				}
				if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "-1"}) {
					t.Errorf("reactions %v; want eyes, -1", got)
				}
				if !strings.Contains(reply, "Sorry") || !strings.Contains(reply, tc.refusal) {
					t.Errorf("reply %q; want a polite refusal saying %q", reply, tc.refusal)
				}
				// On the audit log too: who asked what, and why not.
				if got := r.op.refused(); len(got) != 1 || !strings.HasPrefix(got[0], tc.user+" "+cmd.Verb+" "+cmd.Stage+": ") ||
					!strings.Contains(got[0], tc.refusal) {
					t.Errorf("refusals recorded %q; want %s's %s with the reason", got, tc.user, cmd.Verb)
				}
			}
			if got := r.calls(); !slices.Equal(got, commandCalls) {
				t.Errorf("API calls %v; want %v", got, commandCalls)
			}
		})
	}
}

func TestForceIsRecorded(t *testing.T) {
	r := newRig(t)
	if _, err := r.comment(t, r.merged, "ada", "/shipbot deploy prod --force"); err != nil {
		t.Fatal(err)
	}
	if reqs := r.op.requests(); len(reqs) != 1 || !reqs[0].Force || reqs[0].Actor != "ada" || reqs[0].Stage != "prod" {
		t.Fatalf("operator got %+v; want one forced prod deploy by ada", reqs)
	}
}

func TestUnknownCommandGetsHelp(t *testing.T) {
	r := newRig(t)
	id, err := r.comment(t, r.merged, "wendy", "/shipbot frobnicate")
	if err != nil {
		t.Fatal(err)
	}
	if reqs := r.op.requests(); len(reqs) != 0 {
		t.Errorf("operator called with %+v", reqs)
	}
	b := r.one(t, r.merged, "wendy", "/shipbot frobnicate")
	if !strings.HasSuffix(b, chatops.Help) || !strings.Contains(b, "unknown command") {
		t.Errorf("reply %q; want the problem and the help text", b)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "-1"}) {
		t.Errorf("reactions %v; want eyes, -1", got)
	}
	if got := r.calls(); !slices.Equal(got, openCalls) {
		t.Errorf("API calls %v; want %v (no permission read)", got, openCalls)
	}
}

func TestHelpAndStatusNeedNoPermission(t *testing.T) {
	r := newRig(t)
	id, err := r.comment(t, r.merged, "rita", "/shipbot help")
	if err != nil {
		t.Fatal(err)
	}
	if b := r.one(t, r.merged, "rita", "/shipbot help"); !strings.HasSuffix(b, chatops.Help) {
		t.Errorf("reply %q; want the help text", b)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "+1"}) {
		t.Errorf("help reactions %v", got)
	}
	if got := r.calls(); !slices.Equal(got, openCalls) {
		t.Errorf("help API calls %v; want %v", got, openCalls)
	}
	if reqs := r.op.requests(); len(reqs) != 0 {
		t.Errorf("help went to the operator: %+v", reqs)
	}

	r = newRig(t)
	r.op.text = "| stage | state |\n|---|---|\n| qa | succeeded |\n| prod | baking |"
	if _, err := r.comment(t, r.merged, "rita", "/shipbot status"); err != nil {
		t.Fatal(err)
	}
	if reqs := r.op.requests(); len(reqs) != 1 || reqs[0].Verb != "status" || reqs[0].Actor != "rita" {
		t.Errorf("operator got %+v; want rita's status", reqs)
	}
	if b := r.one(t, r.merged, "rita", "/shipbot status"); !strings.HasSuffix(b, "\n\n"+r.op.text) {
		t.Errorf("reply %q; want the table after a blank line", b)
	}
	if got := r.calls(); !slices.Equal(got, openCalls) {
		t.Errorf("status API calls %v; want %v", got, openCalls)
	}
}

func TestIgnoredComments(t *testing.T) {
	r := newRig(t)
	notPR := func() []byte {
		id := r.gh.AddComment(repo, r.merged, "wendy", "/shipbot deploy prod")
		var m map[string]any
		if err := json.Unmarshal(r.gh.IssueCommentEvent("acme", "api", r.merged, id, "created"), &m); err != nil {
			t.Fatal(err)
		}
		delete(m["issue"].(map[string]any), "pull_request")
		b, _ := json.Marshal(m)
		return b
	}
	for name, deliver := range map[string]func() error{
		"bot's own reply": func() error {
			_, err := r.comment(t, r.merged, bot, "@wendy\n\n> /shipbot status\n\n/shipbot status")
			return err
		},
		"another bot": func() error { _, err := r.comment(t, r.merged, "renovate[bot]", "/shipbot deploy prod"); return err },
		"no command":  func() error { _, err := r.comment(t, r.merged, "wendy", "Nice work! shipbot rocks"); return err },
		"quoted":      func() error { _, err := r.comment(t, r.merged, "wendy", "> /shipbot deploy prod\nwhy?"); return err },
		"not a PR":    func() error { return r.deliver(notPR()) },
		"unmerged, no command": func() error {
			_, err := r.comment(t, r.open, "wendy", "please review")
			return err
		},
	} {
		if err := deliver(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if reqs := r.gh.Requests(); len(reqs) != 0 {
			t.Errorf("%s: %d API calls (first %s); want none", name, len(reqs), reqs[0].Pattern)
		}
		r.gh.ResetRequests()
	}
	if reqs := r.op.requests(); len(reqs) != 0 {
		t.Errorf("operator called with %+v", reqs)
	}
	if rs := append(r.replies(r.merged), r.replies(r.open)...); len(rs) != 1 || rs[0].Body != "@wendy\n\n> /shipbot status\n\n/shipbot status" {
		t.Errorf("bot comments %+v; want only the one the test posted as the bot", rs)
	}
}

func TestUnmergedPullRequest(t *testing.T) {
	r := newRig(t)
	id, err := r.comment(t, r.open, "wendy", "/shipbot deploy prod")
	if err != nil {
		t.Fatal(err)
	}
	if reqs := r.op.requests(); len(reqs) != 0 {
		t.Errorf("operator called with %+v", reqs)
	}
	if b := r.one(t, r.open, "wendy", "/shipbot deploy prod"); !strings.Contains(b, "commands work on merged pull requests") {
		t.Errorf("reply %q", b)
	}
	if got := r.reactions(t, r.open, id); len(got) != 0 {
		t.Errorf("reactions %v; want none", got)
	}
	if got := r.calls(); !slices.Equal(got, []string{patComment}) {
		t.Errorf("API calls %v; want the one reply", got)
	}
}

func TestOperatorRefusal(t *testing.T) {
	r := newRig(t)
	r.op.err = &pipeline.Refusal{Reason: "prod was not skipped: v1.4.2 deploys there anyway."}
	id, err := r.comment(t, r.merged, "wendy", "/shipbot deploy prod")
	if err != nil {
		t.Fatalf("a refusal is an answer, not an error: %v", err)
	}
	if b := r.one(t, r.merged, "wendy", "/shipbot deploy prod"); !strings.HasSuffix(b, r.op.err.Error()) {
		t.Errorf("reply %q; want the refusal's reason", b)
	}
	if got := r.op.refused(); !slices.Equal(got, []string{"wendy deploy prod: " + r.op.err.Error()}) {
		t.Errorf("refusals recorded %q; want wendy's deploy with the operator's reason", got)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "-1"}) {
		t.Errorf("reactions %v; want eyes, -1", got)
	}
	if got := r.calls(); !slices.Equal(got, commandCalls) {
		t.Errorf("API calls %v; want %v", got, commandCalls)
	}
}

func TestOperatorFailureIsAnsweredNotRetried(t *testing.T) {
	r := newRig(t)
	const secret = "postgres://shipbot:hunter2@db/shipbot"
	r.op.err = fmt.Errorf("store: dial %s: connection refused", secret)
	id, err := r.comment(t, r.merged, "wendy", "/shipbot rollback prod")
	if err != nil {
		t.Fatalf("a failed command must not be retried (it would answer twice): %v", err)
	}
	b := r.one(t, r.merged, "wendy", "/shipbot rollback prod")
	if !strings.Contains(b, "failed: ") || strings.Contains(b, "hunter2") || strings.Contains(b, "dial") {
		t.Errorf("reply %q; want a fixed failure text without the error", b)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "-1"}) {
		t.Errorf("reactions %v; want eyes, -1", got)
	}
	if !strings.Contains(r.logs.String(), "connection refused") {
		t.Errorf("the failure is not logged: %s", r.logs.String())
	}
}

func TestPermissionReadFailureRetriesTheDelivery(t *testing.T) {
	r := newRig(t)
	// Both of the client's attempts fail.
	r.gh.FailNext(patPermission, 502, 2)
	id := r.gh.AddComment(repo, r.merged, "wendy", "/shipbot retry prod")
	payload := r.gh.IssueCommentEvent("acme", "api", r.merged, id, "created")
	err := r.deliver(payload)
	if err == nil {
		t.Fatal("a permission read that failed must fail the delivery")
	}
	if typ := fmt.Sprintf("%T", err); typ == "webhook.permanent" {
		t.Errorf("error %v is permanent; want it retried", err)
	}
	if reqs := r.op.requests(); len(reqs) != 0 {
		t.Errorf("operator called with %+v", reqs)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes"}) {
		t.Errorf("reactions %v; want only eyes", got)
	}
	if rs := r.replies(r.merged); len(rs) != 0 {
		t.Errorf("replies %+v; want none before the retry", rs)
	}
	// The redelivery does it all, once.
	if err := r.deliver(payload); err != nil {
		t.Fatal(err)
	}
	if reqs := r.op.requests(); len(reqs) != 1 {
		t.Errorf("operator got %+v; want one call", reqs)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "+1"}) {
		t.Errorf("reactions %v; want eyes, +1", got)
	}
	r.one(t, r.merged, "wendy", "/shipbot retry prod")
}

func TestPermissionForbiddenIsAnswered(t *testing.T) {
	r := newRig(t)
	r.gh.FailNext(patPermission, 403, 1)
	id, err := r.comment(t, r.merged, "wendy", "/shipbot retry prod")
	if err != nil {
		t.Fatalf("a 403 will not heal by retrying: %v", err)
	}
	if reqs := r.op.requests(); len(reqs) != 0 {
		t.Errorf("operator called with %+v", reqs)
	}
	if b := r.one(t, r.merged, "wendy", "/shipbot retry prod"); !strings.Contains(b, "could not read your permission") {
		t.Errorf("reply %q", b)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "-1"}) {
		t.Errorf("reactions %v; want eyes, -1", got)
	}
}

func TestQuoteCannotMention(t *testing.T) {
	r := newRig(t)
	if _, err := r.comment(t, r.merged, "mia", "/shipbot freeze paging @acme/oncall <!-- hide"); err != nil {
		t.Fatal(err)
	}
	b := r.replies(r.merged)[0].Body
	if strings.Contains(b, "@acme") || strings.Contains(b, "<!--") {
		t.Errorf("reply %q mentions someone or opens an HTML comment", b)
	}
	if !strings.HasPrefix(b, "@mia\n") {
		t.Errorf("reply %q does not mention the commenter", b)
	}
}

func TestBadPayload(t *testing.T) {
	r := newRig(t)
	err := r.deliver([]byte("{not json"))
	if err == nil || fmt.Sprintf("%T", err) != "webhook.permanent" {
		t.Errorf("error %v (%T); want a permanent one", err, err)
	}
	if n := len(r.gh.Requests()); n != 0 {
		t.Errorf("%d API calls", n)
	}
}

func TestHandles(t *testing.T) {
	if got := (&chatops.Handler{}).Handles(); !slices.Equal(got, []string{"issue_comment.created"}) {
		t.Errorf("Handles() = %v", got)
	}
}

var _ webhook.Handler = (*chatops.Handler)(nil)

func TestCommandFloodIsRefusedOnceThenIgnored(t *testing.T) {
	// Issue 10: 150 `/shipbot status` from one read-only user cost 450 API
	// calls. Now five run, the sixth gets one polite refusal, and the rest
	// cost GitHub nothing at all (not even a token).
	r := newRig(t)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	r.h.Limit = &chatops.Limiter{Now: c.now}
	r.op.text = "qa: succeeded"
	flood := func(n int) {
		t.Helper()
		for range n {
			if _, err := r.comment(t, r.merged, "rita", "/shipbot status"); err != nil {
				t.Fatal(err)
			}
		}
	}

	flood(5)
	if n := len(r.op.requests()); n != 5 {
		t.Fatalf("operator asked %d times; want the first 5 commands run", n)
	}
	if n := len(r.calls()); n != 5*len(openCalls) {
		t.Fatalf("%d API calls for 5 commands; want %d", n, 5*len(openCalls))
	}
	r.gh.ResetRequests()

	ids := []int64{}
	for range 145 {
		id, err := r.comment(t, r.merged, "rita", "/shipbot status")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if n := len(r.op.requests()); n != 5 {
		t.Errorf("operator asked %d times; want none past the first 5", n)
	}
	if got := r.calls(); !slices.Equal(got, []string{patComment}) {
		t.Errorf("%d API calls for 145 commands over the limit (first %v); want one reply", len(got), got[:min(len(got), 3)])
	}
	rs := r.replies(r.merged)
	if len(rs) != 6 {
		t.Fatalf("%d bot replies; want 5 answers and 1 refusal", len(rs))
	}
	if b := rs[5].Body; !strings.HasPrefix(b, "@rita\n") || !strings.Contains(b, "Sorry") || !strings.Contains(b, "5 at once") {
		t.Errorf("refusal %q; want a polite reply to rita naming the limit", b)
	}
	for _, id := range ids {
		if got := r.reactions(t, r.merged, id); len(got) != 0 {
			t.Fatalf("reactions %v on a command over the limit; want none", got)
		}
	}

	// Another person is not held up by rita's flood.
	if _, err := r.comment(t, r.merged, "wendy", "/shipbot status"); err != nil {
		t.Fatal(err)
	}
	if n := len(r.op.requests()); n != 6 {
		t.Errorf("operator asked %d times; want wendy's command run", n)
	}

	// After a minute's pause rita has her allowance back.
	c.advance(time.Minute)
	r.gh.ResetRequests()
	flood(1)
	if got := r.calls(); !slices.Equal(got, openCalls) {
		t.Errorf("API calls after a pause: %v; want %v", got, openCalls)
	}
}

func TestRefusedCommandIsNotRetried(t *testing.T) {
	// A refusal whose reply fails is not retried: the redelivery would run
	// the command, unchecked.
	r := newRig(t)
	for range 5 {
		if _, err := r.comment(t, r.merged, "rita", "/shipbot help"); err != nil {
			t.Fatal(err)
		}
	}
	r.gh.FailNext(patComment, 502, 2)
	if _, err := r.comment(t, r.merged, "rita", "/shipbot help"); err != nil {
		t.Errorf("refusal whose reply failed: %v; want nil (not retried)", err)
	}
	if !strings.Contains(r.logs.String(), "over the rate limit") {
		t.Errorf("the failed refusal is not logged: %s", r.logs.String())
	}
}

const patTeam = "GET /orgs/{org}/teams/{team_slug}/memberships/{username}"

// approvalRig is a rig whose prod stage waits for approval. alice opened
// the merged pull request (an admin here, to show that it does not
// help her); carol is a listed approver with no role on the repository;
// dan is in team @acme/release-managers, erin only invited to it; sam is
// in @acme/sre.
func approvalRig(t *testing.T, approvers ...string) *rig {
	t.Helper()
	r := newRig(t)
	r.gh.SetPermission(repo, "alice", "admin")
	r.gh.SetTeamMembers("acme", "release-managers", "dan")
	r.gh.SetTeamMembership("acme", "release-managers", "erin", "member", "pending")
	r.gh.SetTeamMembers("acme", "sre", "sam")
	r.op.text = "Approved: v1.4.2 goes to prod."
	r.op.approvals = map[string]pipeline.Approval{
		"prod":     {Stage: "prod", Required: true, Approvers: approvers},
		"api/prod": {Stage: "api/prod", Required: true, Approvers: approvers},
		"qa":       {Stage: "qa", Required: false},
	}
	return r
}

func TestApprovals(t *testing.T) {
	listed := []string{"Carol", "@acme/release-managers", "@acme/sre"}
	for _, tc := range []struct {
		name      string
		approvers []string
		user      string
		body      string
		allowed   bool
		refusal   []string // when refused
		calls     []string
	}{
		{name: "author, an admin", user: "alice", body: "/shipbot approve prod",
			refusal: []string{"author cannot approve prod"}, calls: openCalls},
		{name: "author, listed", approvers: []string{"alice", "carol"}, user: "Alice", body: "/shipbot approve prod",
			refusal: []string{"author cannot approve prod", "needs one of: @\u200balice, @\u200bcarol"}, calls: openCalls},
		{name: "writer, no approvers", user: "wendy", body: "/shipbot approve prod",
			refusal: []string{"approving prod needs maintain permission", "your role here is write"}, calls: commandCalls},
		{name: "maintainer, no approvers", user: "mia", body: "/shipbot approve prod", allowed: true, calls: commandCalls},
		{name: "admin rejects, no approvers", user: "ada", body: "/shipbot reject prod", allowed: true, calls: commandCalls},
		{name: "listed by login", approvers: listed, user: "carol", body: "/shipbot approve prod", allowed: true,
			calls: []string{patReaction, patReaction, patComment}},
		{name: "team member", approvers: listed, user: "dan", body: "/shipbot approve prod", allowed: true,
			calls: []string{patReaction, patTeam, patReaction, patComment}},
		{name: "second team's member", approvers: listed, user: "sam", body: "/shipbot approve api/prod", allowed: true,
			calls: []string{patReaction, patTeam, patTeam, patReaction, patComment}},
		{name: "invited to the team", approvers: listed, user: "erin", body: "/shipbot approve prod",
			refusal: []string{"approving prod needs one of: @\u200bCarol, @\u200bacme/release-managers (team), @\u200bacme/sre (team)"},
			calls:   []string{patReaction, patTeam, patTeam, patReaction, patComment}},
		{name: "maintainer not listed", approvers: listed, user: "mia", body: "/shipbot reject prod",
			refusal: []string{"rejecting prod needs one of"},
			calls:   []string{patReaction, patTeam, patTeam, patReaction, patComment}},
		{name: "stage needs no approval", user: "mia", body: "/shipbot approve qa",
			refusal: []string{"qa needs no approval"}, calls: openCalls},
		{name: "unknown stage", user: "mia", body: "/shipbot approve staging",
			refusal: []string{`has no stage "staging"`}, calls: openCalls},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := approvalRig(t, tc.approvers...)
			id, err := r.comment(t, r.merged, tc.user, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			cmd, _, _, _ := chatops.Parse(tc.body)
			if got, want := r.op.askedAbout(), []string{fmt.Sprintf("%s#%d %s", repo, r.merged, cmd.Stage)}; !slices.Equal(got, want) {
				t.Errorf("operator asked for approvals %v; want %v", got, want)
			}
			reply := r.one(t, r.merged, tc.user, tc.body)
			reqs := r.op.requests()
			if tc.allowed {
				want := pipeline.Command{Verb: pipeline.Verb(cmd.Verb), Stage: cmd.Stage, Repo: repo, PR: r.merged, Actor: tc.user}
				if len(reqs) != 1 || reqs[0] != want {
					t.Errorf("operator got %+v; want [%+v]", reqs, want)
				}
				if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "+1"}) {
					t.Errorf("reactions %v; want eyes, +1", got)
				}
				if !strings.HasSuffix(reply, r.op.text) {
					t.Errorf("reply %q; want the operator's text", reply)
				}
			} else {
				if len(reqs) != 0 {
					t.Errorf("operator called with %+v; want not at all", reqs)
				}
				if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "-1"}) {
					t.Errorf("reactions %v; want eyes, -1", got)
				}
				for _, want := range tc.refusal {
					if !strings.Contains(reply, want) {
						t.Errorf("reply %q; want it to say %q", reply, want)
					}
				}
			}
			if got := r.calls(); !slices.Equal(got, tc.calls) {
				t.Errorf("API calls %v; want %v", got, tc.calls)
			}
		})
	}
}

func TestRejectReasonReachesTheOperator(t *testing.T) {
	r := approvalRig(t, "carol", "@acme/release-managers")
	r.op.text = "Rejected: prod fails for v1.4.2."
	body := "Error budget is gone.\n/shipbot reject prod p99 doubled in canary, see #12"
	if _, err := r.comment(t, r.merged, "dan", body); err != nil {
		t.Fatal(err)
	}
	want := pipeline.Command{Verb: pipeline.Reject, Stage: "prod", Reason: "p99 doubled in canary, see #12", Repo: repo, PR: r.merged, Actor: "dan"}
	if got := r.op.requests(); len(got) != 1 || got[0] != want {
		t.Fatalf("operator got %+v; want [%+v]", got, want)
	}
	r.one(t, r.merged, "dan", "/shipbot reject prod p99 doubled in canary, see #12")
}

func TestTeamReadFailureRetriesTheDelivery(t *testing.T) {
	r := approvalRig(t, "carol", "@acme/release-managers")
	// Both of the client's attempts fail.
	r.gh.FailNext(patTeam, 502, 2)
	id := r.gh.AddComment(repo, r.merged, "dan", "/shipbot approve prod")
	payload := r.gh.IssueCommentEvent("acme", "api", r.merged, id, "created")
	err := r.deliver(payload)
	if err == nil {
		t.Fatal("a team read that failed must fail the delivery")
	}
	if typ := fmt.Sprintf("%T", err); typ == "webhook.permanent" {
		t.Errorf("error %v is permanent; want it retried", err)
	}
	if reqs := r.op.requests(); len(reqs) != 0 {
		t.Errorf("operator called with %+v", reqs)
	}
	if rs := r.replies(r.merged); len(rs) != 0 {
		t.Errorf("replies %+v; want none before the retry", rs)
	}
	if err := r.deliver(payload); err != nil {
		t.Fatal(err)
	}
	if reqs := r.op.requests(); len(reqs) != 1 || reqs[0].Verb != pipeline.Approve || reqs[0].Actor != "dan" {
		t.Errorf("operator got %+v; want dan's approval", reqs)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "+1"}) {
		t.Errorf("reactions %v; want eyes, +1", got)
	}
	r.one(t, r.merged, "dan", "/shipbot approve prod")
}

func TestTeamReadForbiddenIsAnswered(t *testing.T) {
	// Without the organization permission "Members: read" GitHub answers
	// 403: retrying will not help, the user is told why.
	r := approvalRig(t, "carol", "@acme/release-managers")
	r.gh.SetMembersReadDenied(r.gh.InstallationID(), true)
	id, err := r.comment(t, r.merged, "dan", "/shipbot approve prod")
	if err != nil {
		t.Fatalf("a 403 will not heal by retrying: %v", err)
	}
	if reqs := r.op.requests(); len(reqs) != 0 {
		t.Errorf("operator called with %+v", reqs)
	}
	b := r.one(t, r.merged, "dan", "/shipbot approve prod")
	for _, want := range []string{"needs one of: @\u200bcarol, @\u200bacme/release-managers (team)", `"Members: read"`, "team approvers"} {
		if !strings.Contains(b, want) {
			t.Errorf("reply %q; want it to say %q", b, want)
		}
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes", "-1"}) {
		t.Errorf("reactions %v; want eyes, -1", got)
	}
}

func TestApprovalRulesUnreadableRetriesTheDelivery(t *testing.T) {
	r := approvalRig(t)
	r.op.approvalErr = fmt.Errorf("store: connection refused")
	id, err := r.comment(t, r.merged, "mia", "/shipbot approve prod")
	if err == nil {
		t.Fatal("an operator that cannot say who may approve must fail the delivery")
	}
	if reqs := r.op.requests(); len(reqs) != 0 {
		t.Errorf("operator called with %+v", reqs)
	}
	if got := r.reactions(t, r.merged, id); !slices.Equal(got, []string{"eyes"}) {
		t.Errorf("reactions %v; want only eyes", got)
	}
	if rs := r.replies(r.merged); len(rs) != 0 {
		t.Errorf("replies %+v; want none before the retry", rs)
	}
}

func TestApprovalRefusalMentionsNobody(t *testing.T) {
	r := approvalRig(t, "carol", "@acme/release-managers")
	if _, err := r.comment(t, r.merged, "wendy", "/shipbot approve prod"); err != nil {
		t.Fatal(err)
	}
	b := r.one(t, r.merged, "wendy", "/shipbot approve prod")
	if strings.Contains(b, "@carol") || strings.Contains(b, "@acme") {
		t.Errorf("reply %q mentions an approver", b)
	}
}

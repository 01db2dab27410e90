// Package demo plays merges against the real service wired to the
// in-process GitHub fake, and narrates what happens. It needs no account,
// no network and no set-up: `bot demo`.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/store"
)

// Options tune the demo.
type Options struct {
	// Log receives the service's own logs; nil discards them.
	Log io.Writer
	// Dir holds the demo's database; empty means a temporary directory.
	Dir string
}

const repoConfig = `version: 1
pipeline: api
release:
  tag_prefix: v
  initial: 0.1.0
gate:
  approvals: 1
stages:
  - name: qa
    target: spinnaker-qa
    bake: 10m
  - name: prod
    target: spinnaker-prod
    rollback: true
`

// Run plays the demo and writes the narration to out.
func Run(ctx context.Context, out io.Writer, opts Options) error {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))

	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "shipbot-demo-")
		if err != nil {
			return fmt.Errorf("demo dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}

	gh := githubtest.New()
	defer gh.Close()
	fmt.Fprintf(out, "simulated GitHub at %s (App id %d)\n", gh.URL(), gh.AppID())

	const repo = "acme/api"
	gh.AddRepo(repo, githubtest.RepoSpec{Files: map[string]string{
		"README.md":           "# api\n",
		".github/shipbot.yml": repoConfig,
	}})
	gh.SetPermission(repo, "bob", "write")
	gh.SetPermission(repo, "alice", "write")
	gh.SetBranchProtection(repo, "main", githubtest.BranchProtection{RequiredApprovingReviewCount: 1, RequiredStatusChecks: []string{"ci/test"}})

	apps, err := ghclient.NewApps(ghclient.Options{BaseURL: gh.URL(), AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), Logger: log})
	if err != nil {
		return err
	}
	st, err := store.OpenSQLite(filepath.Join(dir, "shipbot.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}

	verdicts := make(chan verdict, 8)
	secret := []byte("demo-webhook-secret")
	handlers, loops := service.Bot{
		Store: st, Clients: apps, Log: log, Owner: "demo",
		Observe: func(r store.Run, o plan.Outcome) { verdicts <- verdict{r, o} },
	}.Parts()
	svc, err := service.New(service.Options{
		Store: st, WebhookSecret: secret, Handlers: handlers, Loops: loops,
		Log: log, WorkerPoll: 50 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	svcCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- svc.Serve(svcCtx, ln) }()
	defer func() { stop(); <-served }()
	hook := "http://" + ln.Addr().String() + "/webhooks/github"
	fmt.Fprintf(out, "shipbot listening at %s\n", hook)

	p := &player{out: out, gh: gh, st: st, hook: hook, secret: secret, verdicts: verdicts, repo: repo}
	stories := []story{
		{"a reviewed, green feature merge", "feat: add /healthz endpoint", nil, true},
		{"a fix labelled no-deploy-to-prod", "fix: handle empty request bodies", []string{"no-deploy-to-prod"}, true},
		{"a merge nobody approved", "feat: experimental cache", nil, false},
	}
	for i, st := range stories {
		fmt.Fprintf(out, "\n== %d. %s\n", i+1, st.name)
		if err := p.play(ctx, st); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nGitHub API calls the bot made: %d\n", gh.Count("*"))
	for _, r := range summarize(gh.Requests()) {
		fmt.Fprintf(out, "  %3d  %s\n", r.n, r.pattern)
	}
	fmt.Fprintln(out, "\ndemo finished")
	return nil
}

type verdict struct {
	run     store.Run
	outcome plan.Outcome
}

type story struct {
	name     string
	title    string
	labels   []string
	approved bool
}

type player struct {
	out      io.Writer
	gh       *githubtest.Server
	st       store.Store
	hook     string
	secret   []byte
	verdicts chan verdict
	repo     string
	n        int
	last     string // the latest delivery id
}

func (p *player) deliver(ctx context.Context, event string, body []byte) error {
	p.n++
	id := fmt.Sprintf("demo-%d", p.n)
	p.last = id
	resp, err := githubtest.Deliver(ctx, p.hook, event, id, body, p.secret)
	if err != nil {
		return fmt.Errorf("deliver %s: %w", event, err)
	}
	resp.Body.Close()
	fmt.Fprintf(p.out, "  -> %-19s delivery %-8s <- %s\n", event, id, resp.Status)
	return nil
}

// waitProcessed waits until the bot has processed delivery id.
func (p *player) waitProcessed(ctx context.Context, id string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, err := p.st.GetDelivery(ctx, id)
		if err == nil && (d.Status == store.StatusDone || d.Status == store.StatusFailed) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("delivery %s not processed within 15s", id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *player) play(ctx context.Context, st story) error {
	owner, name, _ := strings.Cut(p.repo, "/")
	pr := p.gh.OpenPullRequest(p.repo, githubtest.PullRequestSpec{
		Title: st.title, Author: "alice", Labels: st.labels,
		Files: map[string]string{fmt.Sprintf("change%d.go", p.n): "package api\n"},
	})
	head := p.gh.PullRequest(p.repo, pr).HeadSHA
	p.gh.SetStatus(p.repo, head, "ci/test", "success")
	fmt.Fprintf(p.out, "  alice opens PR #%d %q%s\n", pr, st.title, labelNote(st.labels))
	if err := p.deliver(ctx, "pull_request", p.gh.PullRequestEvent(owner, name, pr, "opened")); err != nil {
		return err
	}
	if st.approved {
		id := p.gh.AddReview(p.repo, pr, "bob", "APPROVED", head)
		fmt.Fprintln(p.out, "  bob approves")
		if err := p.deliver(ctx, "pull_request_review", p.gh.ReviewEvent(owner, name, pr, id, "submitted")); err != nil {
			return err
		}
	}
	if err := p.waitPreview(ctx, head); err != nil {
		return err
	}
	before := p.gh.BranchSHA(p.repo, "main")
	sha := p.gh.Merge(p.repo, pr, "alice")
	fmt.Fprintf(p.out, "  PR #%d merged as %s; GitHub sends push and pull_request\n", pr, sha[:7])
	// The push first, as GitHub often does; the pull_request delivery then
	// finds the run the push created.
	if err := p.deliver(ctx, "push", p.gh.PushEvent(owner, name, "refs/heads/main", before, sha)); err != nil {
		return err
	}
	if err := p.deliver(ctx, "pull_request", p.gh.PullRequestEvent(owner, name, pr, "closed")); err != nil {
		return err
	}
	select {
	case v := <-p.verdicts:
		p.printVerdict(v)
	case <-time.After(15 * time.Second):
		return fmt.Errorf("the bot did not decide on the merge of PR #%d within 15s", pr)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// waitPreview waits for the bot to process the latest delivery, and prints
// the preview it left on head.
func (p *player) waitPreview(ctx context.Context, head string) error {
	if err := p.waitProcessed(ctx, p.last); err != nil {
		return err
	}
	cr, ok := p.gh.CheckRun(p.repo, head, "shipbot/preview")
	if !ok {
		return fmt.Errorf("no shipbot/preview on %s", head[:7])
	}
	fmt.Fprintf(p.out, "  shipbot/preview on %s: %s (edited %d times, still one check run)\n", head[:7], cr.Title, cr.Updates)
	return nil
}

func (p *player) printVerdict(v verdict) {
	r, o := v.run, v.outcome
	cr, _ := p.gh.CheckRun(p.repo, r.SHA, "shipbot/rollout")
	fmt.Fprintf(p.out, "  shipbot/rollout on %s: %s (%s)\n", r.SHA[:7], cr.Title, conclusionOf(cr))
	switch o.Kind {
	case plan.Release:
		for _, s := range o.Stages {
			state := "queued for rollout"
			if s.Skipped {
				state = "skipped: label " + s.SkipLabel
			}
			fmt.Fprintf(p.out, "     stage %-5s -> %-15s %s\n", s.Name, s.Target, state)
		}
	case plan.Refused:
		for _, reason := range o.Gate.Reasons {
			fmt.Fprintf(p.out, "     refused: %s\n", reason)
		}
	}
	tags := p.gh.Tags(p.repo)
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = t.Name
	}
	fmt.Fprintf(p.out, "  tags now: %s; releases: %d\n", strings.Join(names, ", "), len(p.gh.Releases(p.repo)))
}

func conclusionOf(cr githubtest.CheckRun) string {
	if cr.Status != "completed" {
		return cr.Status
	}
	return cr.Conclusion
}

func labelNote(labels []string) string {
	if len(labels) == 0 {
		return ""
	}
	return " labelled " + strings.Join(labels, ", ")
}

type patternCount struct {
	pattern string
	n       int
}

func summarize(reqs []githubtest.Request) []patternCount {
	var out []patternCount
	idx := map[string]int{}
	for _, r := range reqs {
		i, ok := idx[r.Pattern]
		if !ok {
			i = len(out)
			idx[r.Pattern] = i
			out = append(out, patternCount{pattern: r.Pattern})
		}
		out[i].n++
	}
	return out
}

// Package demo plays merges against the real service wired to the
// in-process GitHub fake, and narrates what happens. It needs no account,
// no network and no set-up: `bot demo`.
package demo

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/pipeline"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/store"
)

// Options tune the demo.
type Options struct {
	// Log receives the service's own logs; nil discards them.
	Log io.Writer
	// Hold keeps the service (and its dashboard) up after the stories
	// until ctx ends.
	Hold bool
	// Dir holds the demo's database; empty means a temporary directory.
	Dir string
	// Deploy is how long each simulated deploy takes and Bake how long qa
	// bakes: 0 means 400 ms and 1 s, the pace a person can follow. A test
	// that only reads the stories sets them shorter.
	Deploy, Bake time.Duration
}

// repoConfig is the demo repository's .github/shipbot.yml, qa's bake to
// be filled in.
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
    bake: %s
  - name: prod
    target: spinnaker-prod
    rollback: true
`

// deployKey is the demo's payload-constraint secret; it never reaches
// GitHub or the output.
const deployKey = "demo-constraint-secret"

const targetsTemplate = `targets:
  spinnaker-qa:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-qa
    constraints:
      deploy_key: ${DEMO_DEPLOY_KEY}
    repos: [acme/api]
  spinnaker-prod:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-prod
    constraints:
      deploy_key: ${DEMO_DEPLOY_KEY}
    repos: [acme/api]
`

// Run plays the demo and writes the narration to out.
func Run(ctx context.Context, out io.Writer, opts Options) error {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: roundDurations}))

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
		".github/shipbot.yml": fmt.Sprintf(repoConfig, cmp.Or(opts.Bake, time.Second)),
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

	spin := newSpinnaker(deployKey, cmp.Or(opts.Deploy, 400*time.Millisecond))
	defer spin.close()
	kinds := drivers.New()
	targets, err := config.ParseTargets("targets.yml", []byte(fmt.Sprintf(targetsTemplate, spin.srv.URL)), func(k string) (string, bool) {
		if k == "DEMO_DEPLOY_KEY" {
			return deployKey, true
		}
		return "", false
	}, kinds.Kinds())
	if err != nil {
		return fmt.Errorf("demo targets: %w", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	verdicts := make(chan verdict, 8)
	p := &player{out: out, gh: gh, st: st, hook: base + "/webhooks/github", secret: []byte("demo-webhook-secret"),
		verdicts: verdicts, repo: repo, done: make(chan string, 16)}
	bot := service.Bot{
		Store: st, Clients: apps, Log: log, Owner: "demo", Targets: targets, Drivers: kinds, PublicURL: base,
		TokenKey: p.secret, Version: "demo", EngineTick: 100 * time.Millisecond, ReportDelay: 100 * time.Millisecond,
		Observe:        func(r store.Run, o plan.Outcome) { verdicts <- verdict{r, o} },
		ObserveRollout: p.rolloutEvent,
	}.Build()
	svc, err := service.New(service.Options{
		Store: st, WebhookSecret: p.secret, Handlers: bot.Handlers, Loops: bot.Loops,
		Routes: []func(*echo.Echo){bot.Routes}, Log: log, WorkerPoll: 50 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	svcCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- svc.Serve(svcCtx, ln) }()
	defer func() { stop(); <-served }()
	fmt.Fprintf(out, "shipbot listening at %s (simulated Spinnaker at %s)\n", p.hook, spin.srv.URL)
	fmt.Fprintf(out, "dashboard: %s/\n", base)

	stories := []struct {
		name  string
		plays []story
	}{
		{"a reviewed, green feature merge goes qa -> prod", []story{{"feat: add /healthz endpoint", nil, true}}},
		{"a fix labelled no-deploy-to-prod deploys to qa only, until a maintainer says /shipbot deploy prod", []story{{"fix: handle empty request bodies", []string{"no-deploy-to-prod"}, true}}},
		{"a merge nobody approved is refused", []story{{"feat: experimental cache", nil, false}}},
		{"two merges in quick succession deploy one at a time, in version order", []story{
			{"fix: retry on 503", nil, true}, {"perf: cache the config", nil, true}}},
	}
	for i, st := range stories {
		fmt.Fprintf(out, "\n== %d. %s\n", i+1, st.name)
		prs, err := p.playAll(ctx, st.plays)
		if err != nil {
			return err
		}
		if i == 1 {
			// Before any newer version reaches prod: versions only go up
			// in a stage, so later the command would be refused.
			if err := p.command(ctx, prs[0], "carol", "/shipbot deploy prod"); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(out, "\nGitHub API calls the bot made: %d\n", gh.Count("*"))
	for _, r := range summarize(gh.Requests()) {
		fmt.Fprintf(out, "  %3d  %s\n", r.n, r.pattern)
	}
	fmt.Fprintln(out, "\ndemo finished")
	if !opts.Hold {
		fmt.Fprintln(out, "(bot demo --hold keeps the dashboard and the simulated GitHub up afterwards, to click through)")
		return nil
	}
	// Every link the bot wrote (pull requests, releases, commits, check
	// runs, Spinnaker executions) opens a page while the demo holds.
	fmt.Fprintf(out, "holding until Ctrl-C:\n")
	fmt.Fprintf(out, "  dashboard:        %s/\n", base)
	fmt.Fprintf(out, "  simulated GitHub: %s%s (pull requests with shipbot's comment and check runs, releases, deployments)\n", gh.WebURL(), repo)
	fmt.Fprintf(out, "  what runs where:  %s/api/v1/pipelines\n", base)
	fmt.Fprintf(out, "  audit log:        %s/api/v1/events\n", base)
	<-ctx.Done()
	return nil
}

// roundDurations prints durations in the logs to the millisecond
// ("1.012s"), not to the nanosecond ("1.012345678s").
func roundDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		if d := a.Value.Duration(); d >= time.Millisecond {
			return slog.String(a.Key, d.Round(time.Millisecond).String())
		}
	}
	return a
}

// times is "once", "2 times"; n of anything else is "n things".
func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

type verdict struct {
	run     store.Run
	outcome plan.Outcome
}

type story struct {
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
	done     chan string // run ids whose rollout ended
	repo     string
	n        int
	last     string // the latest delivery id

	mu sync.Mutex // serializes output from the engine's goroutines
}

// rolloutEvent prints the engine's events as they happen.
func (p *player) rolloutEvent(ev pipeline.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.What {
	case "done":
		p.done <- ev.RunID
		return
	case "waiting":
		fmt.Fprintf(p.out, "     [%s] %-4s %s\n", ev.Version, ev.Stage, ev.Detail)
		return
	}
	detail := ev.Detail
	if detail != "" {
		detail = ": " + detail
	}
	fmt.Fprintf(p.out, "     [%s] %-4s %s%s\n", ev.Version, ev.Stage, ev.What, detail)
}

func (p *player) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format, args...)
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
	p.printf("  -> %-19s delivery %-8s <- %s\n", event, id, resp.Status)
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

// open opens, checks and (maybe) approves a pull request, and shows its
// preview.
func (p *player) open(ctx context.Context, st story) (int, error) {
	owner, name, _ := strings.Cut(p.repo, "/")
	pr := p.gh.OpenPullRequest(p.repo, githubtest.PullRequestSpec{
		Title: st.title, Author: "alice", Labels: st.labels,
		Files: map[string]string{fmt.Sprintf("change%d.go", p.n): "package api\n"},
	})
	head := p.gh.PullRequest(p.repo, pr).HeadSHA
	p.gh.SetStatus(p.repo, head, "ci/test", "success")
	p.printf("  alice opens PR #%d %q%s\n", pr, st.title, labelNote(st.labels))
	if err := p.deliver(ctx, "pull_request", p.gh.PullRequestEvent(owner, name, pr, "opened")); err != nil {
		return 0, err
	}
	if st.approved {
		id := p.gh.AddReview(p.repo, pr, "bob", "APPROVED", head)
		p.printf("  bob approves PR #%d\n", pr)
		if err := p.deliver(ctx, "pull_request_review", p.gh.ReviewEvent(owner, name, pr, id, "submitted")); err != nil {
			return 0, err
		}
	}
	return pr, p.waitPreview(ctx, head)
}

// playAll opens the stories' pull requests, then merges them one right
// after the other, and follows every merge to the end of its rollout.
func (p *player) playAll(ctx context.Context, stories []story) ([]int, error) {
	owner, name, _ := strings.Cut(p.repo, "/")
	prs := make([]int, len(stories))
	for i, st := range stories {
		pr, err := p.open(ctx, st)
		if err != nil {
			return nil, err
		}
		prs[i] = pr
	}
	for _, pr := range prs {
		before := p.gh.BranchSHA(p.repo, "main")
		sha := p.gh.Merge(p.repo, pr, "alice")
		p.printf("  PR #%d merged as %s; GitHub sends push and pull_request\n", pr, sha[:7])
		// The push first, as GitHub often does; the pull_request delivery
		// then finds the run the push created.
		if err := p.deliver(ctx, "push", p.gh.PushEvent(owner, name, "refs/heads/main", before, sha)); err != nil {
			return nil, err
		}
		if err := p.deliver(ctx, "pull_request", p.gh.PullRequestEvent(owner, name, pr, "closed")); err != nil {
			return nil, err
		}
	}
	var rolling []verdict
	for range prs {
		select {
		case v := <-p.verdicts:
			p.printVerdict(v)
			if v.outcome.Kind == plan.Release && len(v.outcome.Stages) > 0 {
				rolling = append(rolling, v)
			}
		case <-time.After(20 * time.Second):
			return nil, fmt.Errorf("the bot did not decide on a merge within 20s")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for range rolling {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("a rollout did not finish within 30s")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for _, v := range rolling {
		p.showRollout(v.run)
	}
	return prs, nil
}

// showRollout prints the run's rollout check run once it completed, and
// the PR's comments.
func (p *player) showRollout(run store.Run) {
	{
		v := verdict{run: run}
		// The reporter writes a moment after the last change (it coalesces
		// bursts): wait for the check run to complete.
		var cr githubtest.CheckRun
		for deadline := time.Now().Add(10 * time.Second); ; {
			cr, _ = p.gh.CheckRun(p.repo, v.run.SHA, "shipbot/rollout")
			if cr.Status == "completed" || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.printf("  shipbot/rollout on %s: %s (%s)\n", v.run.SHA[:7], cr.Title, conclusionOf(cr))
		for _, line := range strings.Split(strings.TrimSpace(cr.Summary), "\n") {
			if strings.HasPrefix(line, "|") && !strings.HasPrefix(line, "|---") {
				p.printf("     %s\n", line)
			}
		}
		comments := p.gh.Comments(p.repo, v.run.PR)
		p.printf("  PR #%d has %s (shipbot's sticky one, edited %s)\n", v.run.PR, plural(len(comments), "comment"), times(edits(comments)))
	}
}

// command has user comment body on merged PR pr, and shows the bot's
// answer and, when it deployed something, the rollout to its end.
func (p *player) command(ctx context.Context, pr int, user, body string) error {
	owner, name, _ := strings.Cut(p.repo, "/")
	p.gh.SetPermission(p.repo, user, "maintain")
	id := p.gh.AddComment(p.repo, pr, user, body)
	p.printf("  %s (maintainer) comments on PR #%d: %s\n", user, pr, body)
	if err := p.deliver(ctx, "issue_comment", p.gh.IssueCommentEvent(owner, name, pr, id, "created")); err != nil {
		return err
	}
	if err := p.waitProcessed(ctx, p.last); err != nil {
		return err
	}
	refused := false
	for _, c := range p.gh.Comments(p.repo, pr) {
		switch {
		case c.ID == id:
			p.printf("  reactions on the command: %s\n", strings.Join(c.Reactions, " "))
			refused = slices.Contains(c.Reactions, "-1")
		case c.ID > id && strings.HasPrefix(c.Body, "@"+user):
			p.printf("  shipbot replies: %s\n", strings.ReplaceAll(strings.TrimSpace(c.Body[strings.LastIndex(c.Body, "\n")+1:]), "\n", " "))
		}
	}
	if refused {
		return nil
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the rollout did not finish within 30s of the command")
	case <-ctx.Done():
		return ctx.Err()
	}
	runs, err := p.st.ListRuns(ctx, p.repo, 20)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if r.PR == pr {
			p.showRollout(r)
		}
	}
	return nil
}

func edits(cs []githubtest.Comment) int {
	n := 0
	for _, c := range cs {
		n += c.Edits
	}
	return n
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
	fmt.Fprintf(p.out, "  shipbot/preview on %s: %s (edited %s, still one check run)\n", head[:7], cr.Title, times(cr.Updates))
	return nil
}

func (p *player) printVerdict(v verdict) {
	r, o := v.run, v.outcome
	switch o.Kind {
	case plan.Release:
		p.printf("  merge of PR #%d: gate passed, released %s\n", r.PR, o.Tag)
	case plan.Refused:
		cr, _ := p.gh.CheckRun(p.repo, r.SHA, "shipbot/rollout")
		p.printf("  merge of PR #%d: shipbot/rollout %s (%s)\n", r.PR, cr.Title, conclusionOf(cr))
		for _, reason := range o.Gate.Reasons {
			p.printf("     refused: %s\n", reason)
		}
	default:
		p.printf("  merge of PR #%d: %s\n", r.PR, o.String())
	}
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

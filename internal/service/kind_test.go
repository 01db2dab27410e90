package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

// pager is a kind of target that exists only in this file: a deploy is
// asked of an on-call team by page, and the team reports by callback. It
// is what README's "Adding a target kind" says a new kind is: one type
// implementing deploy.Driver, registered with one line. Nothing else in
// shipbot knows it.
type pager struct {
	name  string
	paged chan page
	// learns is how its outcome comes back: by callback, or never (the
	// team deploys; nobody reports).
	learns deploy.Learning
}

// page is one trigger as the pager got it.
type page struct {
	team string
	p    deploy.Payload
}

// pagerSettings are the kind's own keys.
type pagerSettings struct{ team string }

func (pg pager) Kind() string { return pg.name }
func (pager) Keys() []string  { return []string{"team"} }

func (pager) ReadSettings(s *config.Section) any {
	team, ok := s.String("team")
	switch {
	case !s.Has("team"):
		s.Errorf("team", "required for kind %q", s.Kind())
	case ok && strings.TrimSpace(team) == "":
		s.Errorf("team", "must not be empty")
	}
	return pagerSettings{team: team}
}

func (pg pager) Trigger(_ context.Context, _ *deploy.Env, t config.Target, p deploy.Payload) (deploy.Result, error) {
	pg.paged <- page{team: t.Settings.(pagerSettings).team, p: p}
	return deploy.Result{Attempts: 1}, nil
}

func (pg pager) Learns(*deploy.Env, config.Target) deploy.Learning { return pg.learns }

// A new kind of target goes from the targets file through the engine's
// trigger to its callback with one registration line and no other change:
// its keys are read and checked with line and column like every kind's,
// its stage is triggered with the payload every kind gets, and its
// callback passes the stage.
func TestAddingATargetKind(t *testing.T) {
	kind := pager{name: "pager", paged: make(chan page, 4), learns: deploy.ByCallback}
	kinds := drivers.New()
	kinds.Register(kind) // the registration line

	// The kind's keys, and the common ones, checked as every kind's are.
	_, err := config.ParseTargets("targets.yml", []byte(`targets:
  oncall:
    kind: pager
    url: https://pager.example/
    repos: [acme/api]
  nobody:
    kind: pager
    team: '  '
`), nil, kinds.Kinds())
	want := strings.Join([]string{
		`targets.yml:3:5: targets.oncall.team: required for kind "pager"`,
		`targets.yml:4:5: targets.oncall.url: not used by kind "pager" (only by "spinnaker" or "webhook")`,
		`targets.yml:8:11: targets.nobody.team: must not be empty`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("invalid targets file: got\n%v\nwant\n%s", err, want)
	}

	k := startWithKind(t, kinds, "pager")
	got := k.paged(t, kind.paged)
	p := got.p
	if got.team != "platform" || p.Repository != repo || p.SHA != k.sha || p.Tag != "v0.1.0" || p.Stage != "qa" ||
		p.PullRequest != k.pr || p.Attempt != 1 || !strings.HasPrefix(p.CallbackURL, k.base+"/api/v1/callbacks/") {
		t.Fatalf("paged %+v; want team platform, and v0.1.0 of %s to qa with a callback URL", got, k.sha[:7])
	}
	if row := k.stage(); row.State != schedule.Active {
		t.Fatalf("qa is %s before the callback; want it deploying", row.State)
	}

	resp, err := http.Post(p.CallbackURL, "application/json", bytes.NewReader([]byte(`{"state":"succeeded","url":"https://pager.example/incidents/7"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("callback answered %d, want 202 (recorded)", resp.StatusCode)
	}
	eventually(t, "qa passed by the pager's callback", func() bool { return k.stage().State == schedule.Passed })
	select {
	case again := <-kind.paged:
		t.Errorf("paged again: %+v", again)
	default:
	}
}

// A kind whose outcome nothing reports (deploy.Never) has its stage
// handed off once the trigger is accepted, in App mode too.
func TestTargetKindThatNeverReports(t *testing.T) {
	kind := pager{name: "beacon", paged: make(chan page, 4), learns: deploy.Never}
	kinds := drivers.New()
	kinds.Register(kind)
	k := startWithKind(t, kinds, "beacon")
	k.paged(t, kind.paged)
	eventually(t, "qa handed off", func() bool { return k.stage().State == schedule.Passed })
	r, err := k.st.RunBySHA(context.Background(), repo, k.sha)
	if err != nil {
		t.Fatal(err)
	}
	xs, err := k.st.Executions(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != 1 || xs[0].Pass != rollout.HandedOff || xs[0].Reason != "handed off to oncall" {
		t.Errorf("executions %+v; want qa handed off to oncall", xs)
	}
}

// kindRig is the service deploying one merge through the target oncall,
// of a kind the test registered.
type kindRig struct {
	st        *store.SQLite
	base, sha string
	pr        int
}

// startWithKind starts the service with kinds, the target oncall of kind
// kind, and a one-stage pipeline (qa → oncall), and merges one approved
// pull request.
func startWithKind(t *testing.T, kinds *deploy.Registry, kind string) *kindRig {
	t.Helper()
	targets, err := config.ParseTargets("targets.yml", []byte(`targets:
  oncall:
    kind: `+kind+`
    team: ${TEAM}
    constraints: {pager_key: '${PAGER_KEY}'}
    repos: [acme/api]
`), func(k string) (string, bool) {
		v, ok := map[string]string{"TEAM": "platform", "PAGER_KEY": "pager-secret-41c7"}[k]
		return v, ok
	}, kinds.Kinds())
	if err != nil {
		t.Fatal(err)
	}

	gh := servicetest.NewGitHub(t)
	servicetest.SeedRepo(gh, repo, map[string]string{"README.md": "# api\n", ".github/shipbot.yml": `version: 1
pipeline: api
release:
  tag_prefix: v
  initial: 0.1.0
gate:
  approvals: 1
stages:
  - name: qa
    target: oncall
`})
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	log := slog.New(slog.NewTextHandler(servicetest.NewLogBuffer(t, 64<<10), nil))
	secret := []byte("webhook-secret-for-the-pager")
	ln := servicetest.Listen(t)
	k := &kindRig{st: st, base: "http://" + ln.Addr().String()}
	parts := service.Bot{
		Store: st, Clients: servicetest.Apps(t, gh, ghclient.Options{}), Log: log,
		Owner: "test", Targets: targets, Drivers: kinds, PublicURL: k.base, TokenKey: secret, Version: "test",
		EngineTick: 20 * time.Millisecond, ReportDelay: 20 * time.Millisecond, PairWait: -1,
	}.Build()
	srv := servicetest.Start(t, ln, service.Options{
		Store: st, WebhookSecret: secret, Handlers: parts.Handlers, Loops: parts.Loops,
		Routes: []func(*echo.Echo){parts.Routes}, Log: log, Owner: "test",
	})
	t.Cleanup(func() {
		srv.Stop()
		parts.Reporter.Wait()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})

	k.pr = gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: "fix: page the team", Author: "alice"})
	gh.SetStatus(repo, gh.PullRequest(repo, k.pr).HeadSHA, "ci/test", "success")
	gh.AddReview(repo, k.pr, "bob", "APPROVED", "")
	before := gh.BranchSHA(repo, "main")
	k.sha = gh.Merge(repo, k.pr, "alice")
	var ids servicetest.Deliveries
	srv.Hook().SendOK(t,
		ids.New("pull_request", gh.PullRequestEvent(owner, name, k.pr, "closed")),
		ids.New("push", gh.PushEvent(owner, name, "refs/heads/main", before, k.sha)))
	return k
}

// paged waits for the kind's trigger.
func (k *kindRig) paged(t *testing.T, ch <-chan page) page {
	t.Helper()
	select {
	case got := <-ch:
		return got
	case <-time.After(waitLimit):
		t.Fatal("the target was never triggered")
		return page{}
	}
}

// stage is the merge's qa stage as stored.
func (k *kindRig) stage() store.StageRow {
	r, err := k.st.RunBySHA(context.Background(), repo, k.sha)
	if err != nil {
		return store.StageRow{}
	}
	rr, err := k.st.GetRollout(context.Background(), r.ID)
	if err != nil || len(rr.Stages) != 1 {
		return store.StageRow{}
	}
	return rr.Stages[0]
}

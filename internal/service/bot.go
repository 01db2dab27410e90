package service

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/alarm"
	"github.com/shipbot/shipbot/internal/api"
	"github.com/shipbot/shipbot/internal/chatops"
	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/dashboard"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
	"github.com/shipbot/shipbot/internal/merge"
	"github.com/shipbot/shipbot/internal/pipeline"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/preview"
	"github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

// Bot is shipbot itself, as `bot serve` and `bot demo` both run it: the
// webhook handlers, the rollout engine, the reporters and the API.
type Bot struct {
	Store   store.Store
	Clients merge.Clients
	Log     *slog.Logger
	Owner   string
	Targets config.Targets
	// Drivers are the kinds of target, the registry Targets was parsed
	// with; nil means drivers.New().
	Drivers *deploy.Registry
	// PublicURL is the service's external URL (callback URLs).
	PublicURL string
	// TokenKey derives callback tokens; the webhook secret serves.
	TokenKey []byte
	// APIToken guards the write API; empty disables it.
	APIToken string
	// DashboardToken guards the dashboard's pages; empty leaves them open.
	DashboardToken string
	Version        string
	// HTTP sends triggers and reads alarms; nil means the defaults.
	HTTP *http.Client
	// Observe, when set, is told of every merge verdict.
	Observe func(store.Run, plan.Outcome)
	// ObserveRollout, when set, is told of every rollout event.
	ObserveRollout func(pipeline.Event)
	// EngineTick and ReportDelay tune the engine; zero takes defaults.
	EngineTick  time.Duration
	ReportDelay time.Duration
	// PairWait is how long a merge waits for its other delivery; zero
	// takes merge.DefaultPairWait.
	PairWait time.Duration
	// AppID is the GitHub App's id: its own check runs finishing do not
	// refresh previews.
	AppID int64
	// PreviewRefreshEvery is how often at most check deliveries refresh
	// one head's preview; zero takes preview.DefaultRefreshEvery.
	PreviewRefreshEvery time.Duration
	// Pressure, when set, is the pacer under Clients (pacing.Pacer):
	// reporting writes only what the PR must show while an
	// installation's write budget is short.
	Pressure interface{ Pressed(installation int64) bool }
}

// Parts is the assembled bot.
type Parts struct {
	Handlers    []webhook.Handler
	Loops       []func(context.Context)
	Routes      func(*echo.Echo)
	Engine      *pipeline.Engine
	Reporter    *report.Rollouts
	Coordinator *merge.Coordinator
}

// Build assembles the bot.
func (b Bot) Build() Parts {
	checks := &report.Checks{Store: b.Store}
	comments := &report.Comments{Store: b.Store}
	reporter := &report.Rollouts{Store: b.Store, Clients: b.Clients, Checks: checks, Comments: comments,
		Deployments: &report.Deployments{Store: b.Store, PublicURL: b.PublicURL},
		Log:         b.Log.With("component", "report"), Delay: b.ReportDelay, Pressure: b.Pressure}
	reg := b.Drivers
	if reg == nil {
		reg = drivers.New()
	}
	engine := &pipeline.Engine{
		Store:   b.Store,
		Targets: b.Targets,
		Trigger: &deploy.Triggerer{Drivers: reg, Env: deploy.Env{
			HTTP: b.HTTP, Log: b.Log.With("component", "deploy"), Version: b.Version, GitHub: b.dispatchClient}},
		Alarms:    &alarm.Checker{HTTP: b.HTTP, Log: b.Log.With("component", "alarm"), Version: b.Version},
		Reporter:  reporter,
		PublicURL: b.PublicURL,
		TokenKey:  b.TokenKey,
		Owner:     b.Owner,
		Log:       b.Log.With("component", "engine"),
		Tick:      b.EngineTick,
		Observe:   b.ObserveRollout,
	}
	if peers, ok := b.Store.(store.Notifier); ok {
		engine.Peers = peers // several replicas may share this database
	}
	coord := &merge.Coordinator{
		Store: b.Store, Clients: b.Clients, Checks: checks, Comments: comments, Rollouts: engine,
		Owner: b.Owner, Log: b.Log.With("component", "merge"), Observe: b.Observe, PairWait: b.PairWait,
	}
	prev := &preview.Handler{Clients: b.Clients, Checks: checks, Log: b.Log.With("component", "preview"), AppID: b.AppID,
		RefreshEvery: b.PreviewRefreshEvery,
		MergedLabels: func(ctx context.Context, repo string, pr int, labels []string) error {
			if err := b.Store.SetLabels(ctx, repo, pr, labels); err != nil {
				return err
			}
			engine.Wake()
			return nil
		}}
	ops := &chatops.Handler{Clients: b.Clients, Operator: engine, Log: b.Log.With("component", "chatops")}
	a := &api.API{Store: b.Store, Callbacks: engine, Token: b.APIToken, ReadToken: b.DashboardToken, Freezer: engine}
	d := &dashboard.Dashboard{Store: b.Store, Token: b.DashboardToken, Log: b.Log.With("component", "dashboard")}
	return Parts{
		Handlers:    []webhook.Handler{coord, prev, ops},
		Loops:       []func(context.Context){coord.Run, engine.Run},
		Routes:      func(e *echo.Echo) { a.Register(e); d.Register(e) },
		Engine:      engine,
		Reporter:    reporter,
		Coordinator: coord,
	}
}

// repositoryClients finds the installation that covers a repository, for
// github-dispatch targets (which may dispatch into another repository).
type repositoryClients interface {
	ForRepository(ctx context.Context, repository string) (*gh.Client, error)
}

func (b Bot) dispatchClient(ctx context.Context, repository string) (*gh.Client, error) {
	rc, ok := b.Clients.(repositoryClients)
	if !ok {
		return nil, errors.New("github-dispatch targets need GitHub App clients")
	}
	return rc.ForRepository(ctx, repository)
}

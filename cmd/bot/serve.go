package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/pacing"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/store"
)

func loadServerConfig() (config.Server, error) {
	return config.ServerFromEnv(os.Getenv, os.ReadFile)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: readableDurations}))
}

// readableDurations writes durations as "1.5s", to the millisecond, rather
// than the JSON handler's integer nanoseconds (or the text handler's
// "1.500123456s"), which nobody reading a log can take in.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	d := a.Value.Duration()
	if d >= time.Millisecond || d <= -time.Millisecond {
		d = d.Round(time.Millisecond)
	}
	return slog.String(a.Key, d.String())
}

// openDB opens SHIPBOT_DB, a SQLite file or a postgres:// URL, and brings
// its schema up to date.
func openDB(ctx context.Context, dsn string, log *slog.Logger) (store.Database, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, st, dsn, log); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// openStore opens the SQLite file at path (Action mode's state) and brings
// its schema up to date.
func openStore(ctx context.Context, path string, log *slog.Logger) (*store.SQLite, error) {
	st, err := store.OpenSQLite(path)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, st, path, log); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// migrate applies st's pending migrations and logs what it applied.
func migrate(ctx context.Context, st store.Database, dsn string, log *slog.Logger) error {
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		log.Info("migrations applied", "db", store.DisplayName(dsn), "versions", applied)
	}
	return nil
}

const serveUsage = `usage: bot serve

Runs the webhook service (GitHub App mode): takes GitHub's webhooks on
POST /webhooks/github, gates, releases and rolls out every merge, and serves
deploy callbacks, the dashboard, the API, /healthz, /readyz and /metrics.
It takes no arguments: the environment configures it.

Environment:
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlags("serve"), args, 0, serveUsage+envHelp(), stdout); err != nil {
		return err
	}
	cfg, err := loadServerConfig()
	if err != nil {
		return err
	}
	if err := cfg.RequireApp(); err != nil {
		return err
	}
	kinds := drivers.New()
	targets, err := loadTargets(cfg.TargetsFile, kinds)
	if err != nil {
		return err
	}
	// Errors are redacted where they are made; the log is scrubbed of every
	// target secret once more, so a message built elsewhere cannot leak one.
	// So is the database URL's password.
	log := slog.New(deploy.RedactHandler(newLogger(stderr, cfg.LogLevel).Handler(), deploy.NewRedactor(append(targets.Secrets(), store.DSNPassword(cfg.DB))...)))
	log.Info("starting shipbot", "version", version, "config", cfg)
	// Once, at start: the file does not change while the process runs.
	for _, w := range targets.Warnings {
		log.Warn("targets file", "warning", w.Msg, "file", w.File, "line", w.Line, "column", w.Column)
	}

	st, err := openDB(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer st.Close()
	// The write windows are the installation's: kept in the database
	// every replica shares.
	pacer := &pacing.Pacer{Ledger: st, Limits: cfg.WriteLimits}
	apps, err := ghclient.NewApps(ghclient.Options{
		BaseURL:    cfg.GitHubAPIURL,
		AppID:      cfg.AppID,
		PrivateKey: cfg.PrivateKey,
		Logger:     log.With("component", "github"),
		Pacer:      pacer,
	})
	if err != nil {
		return err
	}

	host, _ := os.Hostname()
	bot := service.Bot{
		Store: st, Clients: apps, Log: log, Owner: fmt.Sprintf("%s:%d", host, os.Getpid()),
		Targets: targets, Drivers: kinds, PublicURL: cfg.PublicURL, TokenKey: cfg.WebhookSecret, APIToken: cfg.APIToken,
		DashboardToken: cfg.DashboardToken, Version: version, AppID: cfg.AppID, Pressure: pacer,
	}.Build()
	svc, err := service.New(service.Options{
		Store:         st,
		WebhookSecret: cfg.WebhookSecret,
		Handlers:      bot.Handlers,
		Loops:         bot.Loops,
		Routes:        []func(*echo.Echo){bot.Routes},
		Log:           log,
		Retention:     cfg.Retention,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("SHIPBOT_LISTEN: %w", err)
	}
	err = svc.Serve(ctx, ln)
	// The rollout reports scheduled but not yet sent go now, before the
	// database closes: a stopping process has no later to coalesce into.
	fctx, cancel := context.WithTimeout(context.Background(), reportFlushTimeout)
	defer cancel()
	if !bot.Reporter.Flush(fctx) {
		log.Warn("stopping with rollout reports not yet written; the next process shows them", "waited", reportFlushTimeout)
	}
	return err
}

// reportFlushTimeout bounds the last reports' flush on SIGTERM: with
// the 10 s the service gives in-flight requests, it stays within
// Kubernetes' default 30 s grace period.
const reportFlushTimeout = 5 * time.Second

// loadTargets reads SHIPBOT_TARGETS_FILE; a malformed file stops the
// service at start, naming line and column.
func loadTargets(path string, kinds *deploy.Registry) (config.Targets, error) {
	if path == "" {
		return config.Targets{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return config.Targets{}, fmt.Errorf("%s: %w", config.EnvTargetsFile, err)
	}
	t, err := config.ParseTargets(path, data, os.LookupEnv, kinds.Kinds())
	if err != nil {
		return config.Targets{}, fmt.Errorf("%s: invalid targets file:\n%w", config.EnvTargetsFile, err)
	}
	return t, nil
}

const migrateUsage = `usage: bot migrate

Applies the database migrations to SHIPBOT_DB (a SQLite file, default
shipbot.db, or a postgres:// URL) and exits. bot serve applies them at
start too; run this to migrate ahead of a deploy. Replicas sharing one
PostgreSQL database may all start at once: one migrates, the others wait
for it. It takes no arguments.`

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlags("migrate"), args, 0, migrateUsage, stdout); err != nil {
		return err
	}
	cfg, err := loadServerConfig()
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	name := store.DisplayName(cfg.DB) // a URL's password is never printed
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "%s: schema up to date\n", name)
		return nil
	}
	fmt.Fprintf(stdout, "%s: applied migrations %v\n", name, applied)
	return nil
}

const checkConfigUsage = `usage: bot check-config FILE

Validates FILE and reports every problem as FILE:LINE:COLUMN: message; exits
1 when the file is invalid, 0 when it is valid.

FILE is a repository's .github/shipbot.yml, or, when it has a top-level
targets: key, a targets file (SHIPBOT_TARGETS_FILE). A valid repository
configuration is printed with every default filled in. A targets file's
${VAR}s are read from this environment: the ones that are unset are
warnings, as are URLs that point at link-local or cloud metadata
addresses; bot serve logs the same warnings at start.`

func runCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config")
	if err := parseFlags(fs, args, 1, checkConfigUsage, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("needs the FILE to check"), usageText(fs, checkConfigUsage)}
	}
	file := fs.Arg(0)
	data, err := os.ReadFile(file)
	if err != nil {
		return exitError{1, err}
	}
	if config.IsTargetsFile(data) {
		return checkTargets(file, data, stdout, stderr)
	}
	// The repository's name, the default pipeline, cannot be known from a
	// file alone: parse without one and say so.
	repo, err := config.ParseRepo(file, data, "")
	if err != nil {
		return exitError{1, fmt.Errorf("invalid configuration:\n%w", err)}
	}
	if repo.Multi {
		names := make([]string, len(repo.Pipelines))
		for i, p := range repo.Pipelines {
			names[i] = p.Name
		}
		fmt.Fprintf(stdout, "%s: valid; %s (%s); with defaults filled in:\n", file, plural(len(names), "pipeline"), strings.Join(names, ", "))
	} else {
		fmt.Fprintf(stdout, "%s: valid; with defaults filled in:\n", file)
	}
	printRepo(stdout, repo)
	return nil
}

// checkTargets validates a targets file with the environment of this
// process, as bot serve would read it.
func checkTargets(file string, data []byte, stdout, stderr io.Writer) error {
	t, err := config.ParseTargets(file, data, os.LookupEnv, drivers.New().Kinds())
	if err != nil {
		return exitError{1, fmt.Errorf("invalid targets file:\n%w", err)}
	}
	for _, w := range t.Warnings {
		w.Msg = "warning: " + w.Msg
		fmt.Fprintln(stderr, w)
	}
	fmt.Fprintf(stdout, "%s: valid targets file: %s, %s", file, plural(len(t.Targets), "target"), plural(len(t.Alarms), "alarm"))
	if n := len(t.Warnings); n > 0 {
		fmt.Fprintf(stdout, " (%s above)", plural(n, "warning"))
	}
	fmt.Fprintln(stdout)
	return nil
}

// printRepo prints a configuration as YAML with every default written
// out, so that a reader sees what the file means, not only what it says.
// The single-pipeline form prints as it is written; the `pipelines:` form
// prints each pipeline with its own release and stages.
func printRepo(w io.Writer, r config.Repo) {
	fmt.Fprintf(w, "version: %d\n", r.Version)
	if !r.Multi {
		p := r.Pipelines[0]
		name := p.Name
		if name == "" {
			name = "(default: the repository's name)"
		}
		fmt.Fprintf(w, "pipeline: %s\n", name)
		printPipeline(w, p, "")
		printGate(w, r.Gate)
		printStages(w, r, p, "")
		return
	}
	printGate(w, r.Gate)
	fmt.Fprintln(w, "pipelines:")
	for _, p := range r.Pipelines {
		fmt.Fprintf(w, "  - name: %s\n", p.Name)
		if p.Paths == nil {
			fmt.Fprintln(w, "    paths: (none: every merge)")
		} else {
			fmt.Fprintf(w, "    paths: [%s]\n", quotedList(p.Paths))
		}
		fmt.Fprintf(w, "    ignore: [%s]\n", quotedList(p.Ignore))
		printPipeline(w, p, "    ")
		printStages(w, r, p, "    ")
	}
}

// printPipeline prints a pipeline's concurrency and release, each line
// indented by indent.
func printPipeline(w io.Writer, p config.Pipeline, indent string) {
	fmt.Fprintf(w, "%sconcurrency: %s\n", indent, p.Concurrency)
	fmt.Fprintf(w, "%[1]srelease:\n%[1]s  tag_prefix: %[2]q\n%[1]s  initial: %[3]s\n%[1]s  bump: %[4]s\n",
		indent, p.Release.TagPrefix, p.Release.Initial, p.Release.Bump)
}

func printGate(w io.Writer, g config.Gate) {
	fmt.Fprintf(w, "gate:\n  approvals: %d\n  require_protected_branch: %t\n  require_checks: %t\n",
		g.Approvals, g.RequireProtectedBranch, g.RequireChecks)
}

// printStages prints the stages of pipeline p of r, each line indented by
// indent.
func printStages(w io.Writer, r config.Repo, p config.Pipeline, indent string) {
	stages := p.Stages
	if len(stages) == 0 {
		fmt.Fprintf(w, "%sstages: []   # none: a merge is released, and deployed nowhere\n", indent)
		return
	}
	fmt.Fprintf(w, "%sstages:\n", indent)
	line := func(format string, args ...any) {
		fmt.Fprintf(w, indent+"    "+format+"\n", args...)
	}
	for _, s := range stages {
		fmt.Fprintf(w, "%s  - name: %s\n", indent, s.Name)
		if s.Wave() {
			line("targets: [%s]   # a wave: all at once", strings.Join(s.Targets, ", "))
		} else {
			line("target: %s", s.Target)
		}
		if s.Bake == 0 {
			line("bake: 0s   # none")
		} else {
			line("bake: %s", durationText(s.Bake))
		}
		if s.TimeoutSet {
			line("timeout: %s", durationText(s.Timeout))
		} else {
			line("timeout: %s   # default: the target's timeout if it sets one", durationText(config.DefaultStageTimeout))
		}
		if s.Window != nil {
			line("window: %q", s.Window.String())
		} else {
			line("window: (none: any time)")
		}
		line("alarms: [%s]", strings.Join(s.Alarms, ", "))
		line("rollback: %t", s.Rollback)
		if labels := r.SkipLabels(p, s); len(labels) > 1 {
			line("skip_label: %s   # %s skips it in this pipeline only", labels[0], strings.Join(labels[1:], ", "))
		} else {
			line("skip_label: %s", labels[0])
		}
		line("approval: %t", s.Approval)
		switch {
		case len(s.Approvers) > 0:
			line("approvers: [%s]", quotedList(s.Approvers))
		case s.Approval:
			line("approvers: (anyone with maintain, never the PR's author)")
		}
	}
}

// quotedList joins xs as a YAML flow list's items, quoting each one.
func quotedList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

// durationText is d as a configuration would spell it: "10m", not
// time.Duration's "10m0s".
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// plural is "1 target", "2 targets".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

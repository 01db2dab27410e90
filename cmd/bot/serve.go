package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
	ghclient "github.com/shipbot/shipbot/internal/github"
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

// openStore opens the configured database and brings its schema up to date.
func openStore(ctx context.Context, path string, log *slog.Logger) (*store.SQLite, error) {
	st, err := store.OpenSQLite(path)
	if err != nil {
		return nil, err
	}
	applied, err := st.Migrate(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("migrations applied", "db", path, "versions", applied)
	}
	return st, nil
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
	log := slog.New(deploy.RedactHandler(newLogger(stderr, cfg.LogLevel).Handler(), deploy.NewRedactor(targets.Secrets()...)))
	log.Info("starting shipbot", "version", version, "config", cfg)
	// Once, at start: the file does not change while the process runs.
	for _, w := range targets.Warnings {
		log.Warn("targets file", "warning", w.Msg, "file", w.File, "line", w.Line, "column", w.Column)
	}

	apps, err := ghclient.NewApps(ghclient.Options{
		BaseURL:    cfg.GitHubAPIURL,
		AppID:      cfg.AppID,
		PrivateKey: cfg.PrivateKey,
		Logger:     log.With("component", "github"),
	})
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer st.Close()

	host, _ := os.Hostname()
	bot := service.Bot{
		Store: st, Clients: apps, Log: log, Owner: fmt.Sprintf("%s:%d", host, os.Getpid()),
		Targets: targets, Drivers: kinds, PublicURL: cfg.PublicURL, TokenKey: cfg.WebhookSecret, APIToken: cfg.APIToken,
		DashboardToken: cfg.DashboardToken, Version: version,
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
	return svc.Serve(ctx, ln)
}

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

Applies the database migrations to SHIPBOT_DB (default shipbot.db) and
exits. bot serve applies them at start too; run this to migrate ahead of a
deploy. It takes no arguments.`

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlags("migrate"), args, 0, migrateUsage, stdout); err != nil {
		return err
	}
	cfg, err := loadServerConfig()
	if err != nil {
		return err
	}
	st, err := store.OpenSQLite(cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "%s: schema up to date\n", cfg.DB)
		return nil
	}
	fmt.Fprintf(stdout, "%s: applied migrations %v\n", cfg.DB, applied)
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
	fmt.Fprintf(stdout, "%s: valid; with defaults filled in:\n", file)
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
func printRepo(w io.Writer, r config.Repo) {
	pipeline := r.Pipeline
	if pipeline == "" {
		pipeline = "(default: the repository's name)"
	}
	fmt.Fprintf(w, "version: %d\n", r.Version)
	fmt.Fprintf(w, "pipeline: %s\n", pipeline)
	fmt.Fprintf(w, "concurrency: %s\n", r.Concurrency)
	fmt.Fprintf(w, "release:\n  tag_prefix: %q\n  initial: %s\n  bump: %s\n", r.Release.TagPrefix, r.Release.Initial, r.Release.Bump)
	fmt.Fprintf(w, "gate:\n  approvals: %d\n  require_protected_branch: %t\n  require_checks: %t\n",
		r.Gate.Approvals, r.Gate.RequireProtectedBranch, r.Gate.RequireChecks)
	if len(r.Stages) == 0 {
		fmt.Fprintln(w, "stages: []   # none: a merge is released, and deployed nowhere")
		return
	}
	fmt.Fprintln(w, "stages:")
	for _, s := range r.Stages {
		fmt.Fprintf(w, "  - name: %s\n    target: %s\n", s.Name, s.Target)
		if s.Bake == 0 {
			fmt.Fprintln(w, "    bake: 0s   # none")
		} else {
			fmt.Fprintf(w, "    bake: %s\n", durationText(s.Bake))
		}
		if s.TimeoutSet {
			fmt.Fprintf(w, "    timeout: %s\n", durationText(s.Timeout))
		} else {
			fmt.Fprintf(w, "    timeout: %s   # default: the target's timeout if it sets one\n", durationText(config.DefaultStageTimeout))
		}
		if s.Window != nil {
			fmt.Fprintf(w, "    window: %q\n", s.Window.String())
		} else {
			fmt.Fprintln(w, "    window: (none: any time)")
		}
		fmt.Fprintf(w, "    alarms: [%s]\n", strings.Join(s.Alarms, ", "))
		fmt.Fprintf(w, "    rollback: %t\n", s.Rollback)
		fmt.Fprintf(w, "    skip_label: %s\n", s.SkipLabelName())
	}
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

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/labstack/echo/v4"
	"github.com/shipbot/shipbot/internal/config"

	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/store"
)

func loadServerConfig() (config.Server, error) {
	return config.ServerFromEnv(os.Getenv, os.ReadFile)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
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

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	if len(args) > 0 {
		return exitError{2, fmt.Errorf("takes no arguments, got %q", args)}
	}
	cfg, err := loadServerConfig()
	if err != nil {
		return err
	}
	if err := cfg.RequireApp(); err != nil {
		return err
	}
	targets, err := loadTargets(cfg.TargetsFile)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	log.Info("starting shipbot", "version", version, "config", cfg)

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
		Targets: targets, PublicURL: cfg.PublicURL, TokenKey: cfg.WebhookSecret, APIToken: cfg.APIToken,
		DashboardToken: cfg.DashboardToken, Version: version,
	}.Build()
	svc, err := service.New(service.Options{
		Store:         st,
		WebhookSecret: cfg.WebhookSecret,
		Handlers:      bot.Handlers,
		Loops:         bot.Loops,
		Routes:        []func(*echo.Echo){bot.Routes},
		Log:           log,
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
func loadTargets(path string) (config.Targets, error) {
	if path == "" {
		return config.Targets{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return config.Targets{}, fmt.Errorf("%s: %w", config.EnvTargetsFile, err)
	}
	t, err := config.ParseTargets(path, data, os.LookupEnv)
	if err != nil {
		return config.Targets{}, fmt.Errorf("%s: invalid targets file:\n%w", config.EnvTargetsFile, err)
	}
	return t, nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return exitError{2, fmt.Errorf("takes no arguments, got %q", args)}
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

func runCheckConfig(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) != 1 {
		return exitError{2, fmt.Errorf("usage: bot check-config FILE")}
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return exitError{1, err}
	}
	repo, err := config.ParseRepo(args[0], data, "repository")
	if err != nil {
		return exitError{1, fmt.Errorf("invalid configuration:\n%w", err)}
	}
	fmt.Fprintf(stdout, "%s: valid (pipeline %q, %d stage(s))\n", args[0], repo.Pipeline, len(repo.Stages))
	return nil
}

// Package service assembles the webhook service: the HTTP endpoints, the
// inbox worker and their shutdown order. `bot serve` and `bot demo` both run
// it, so the demo exercises exactly what production runs.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shipbot/shipbot/internal/metrics"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

// Options are what the service is built from.
type Options struct {
	Store         store.Store
	WebhookSecret []byte
	Handlers      []webhook.Handler
	// Loops run beside the worker for the life of the service (the merge
	// sweeper, later the rollout scheduler); each returns when its context
	// ends.
	Loops []func(context.Context)
	// Routes add endpoints beside the webhook and probes.
	Routes []func(*echo.Echo)
	Log    *slog.Logger
	// Owner names this process in inbox leases; default host:pid.
	Owner string
	// Worker tuning; zero values take the worker's defaults.
	WorkerPoll  time.Duration
	WorkerLease time.Duration
	// ShutdownTimeout bounds how long in-flight requests get on shutdown.
	ShutdownTimeout time.Duration
}

// Service is the assembled webhook service.
type Service struct {
	opts   Options
	echo   *echo.Echo
	worker *webhook.Worker
}

// New wires the service. It does not start anything.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("service: no store")
	}
	if len(opts.WebhookSecret) == 0 {
		return nil, errors.New("service: no webhook secret")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Owner == "" {
		host, _ := os.Hostname()
		opts.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	disp, err := webhook.NewDispatcher(opts.Handlers...)
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	w := &webhook.Worker{
		Inbox:    opts.Store,
		Dispatch: disp.Dispatch,
		Owner:    opts.Owner,
		Log:      opts.Log.With("component", "worker"),
		Poll:     opts.WorkerPoll,
		Lease:    opts.WorkerLease,
	}
	intake := &webhook.Intake{
		Secret: opts.WebhookSecret,
		Inbox:  opts.Store,
		Wants:  disp.Wants,
		Wake:   w.Wake,
		Log:    opts.Log.With("component", "webhook"),
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	e.POST("/webhooks/github", intake.Handle)
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := opts.Store.Ready(ctx); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{})))
	for _, r := range opts.Routes {
		r(e)
	}
	opts.Log.Debug("webhook handlers", "events", disp.Keys())
	return &Service{opts: opts, echo: e, worker: w}, nil
}

// Handler is the service's HTTP handler, for tests that bring their own
// server.
func (s *Service) Handler() http.Handler { return s.echo }

// Serve answers HTTP on ln and drains the inbox until ctx ends, then shuts
// down in order: stop accepting and finish in-flight requests, then let the
// worker finish the delivery it holds. The caller closes the store after.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.echo, ReadHeaderTimeout: 10 * time.Second}
	workerCtx, stopWorker := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, loop := range append([]func(context.Context){func(ctx context.Context) { s.worker.Run(ctx) }}, s.opts.Loops...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(workerCtx)
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.opts.Log.Info("listening", "addr", ln.Addr().String())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.opts.Log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("http shutdown: %w", err))
	}
	stopWorker()
	wg.Wait()
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

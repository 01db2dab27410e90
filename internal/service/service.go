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

	// BodyTimeout is how long a request's body may take to arrive, from
	// the end of its headers; past it the connection is closed. Zero
	// means DefaultBodyTimeout.
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that has sent no new
	// request for this long. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// LargeBodies and LargeBodyWait tune how many large webhook bodies
	// are read at once (see webhook.Intake); zero takes its defaults.
	LargeBodies   int
	LargeBodyWait time.Duration

	// Retention is how long processed deliveries keep their payloads
	// (SHIPBOT_RETENTION); zero means DefaultRetention.
	Retention time.Duration
	// PruneEvery is how often payloads past Retention are pruned; zero
	// means DefaultPruneEvery.
	PruneEvery time.Duration
	// Now is the clock pruning measures Retention against; nil means
	// time.Now.
	Now func() time.Time
}

// Defaults of Options. Unauthenticated clients can open connections and
// send bodies before the webhook signature is checked, so none of these
// waits is unbounded.
const (
	// DefaultReadHeaderTimeout bounds the request line and headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds the body: GitHub sends a 25 MB delivery in
	// well under a second, and gives up on an answer after 10 s.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultIdleTimeout closes idle keep-alive connections.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultRetention is how long processed deliveries keep payloads.
	DefaultRetention = 14 * 24 * time.Hour
	// DefaultPruneEvery is the pruning period after the one at start.
	DefaultPruneEvery = time.Hour
)

// Service is the assembled webhook service.
type Service struct {
	opts    Options
	echo    *echo.Echo
	handler http.Handler // echo under the body deadline
	worker  *webhook.Worker
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
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = DefaultBodyTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.PruneEvery <= 0 {
		opts.PruneEvery = DefaultPruneEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
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
		Wake:   w.WakeFor,
		Log:    opts.Log.With("component", "webhook"),

		LargeBodies:   opts.LargeBodies,
		LargeBodyWait: opts.LargeBodyWait,
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
	s := &Service{opts: opts, echo: e, worker: w}
	s.handler = bodyDeadline(e, opts.BodyTimeout)
	return s, nil
}

// Options are the options the service runs with, defaults filled in.
func (s *Service) Options() Options { return s.opts }

// Handler is the service's HTTP handler, for tests that bring their own
// server.
func (s *Service) Handler() http.Handler { return s.handler }

// bodyDeadline gives every request that has a body d from the end of its
// headers to deliver it; a body still incomplete then fails to read, and
// the server closes the connection once the handler answers. (http.Server's
// ReadTimeout counts from the first byte of the request line instead.)
// net/http lifts the deadline itself once the body has been read to its
// end, so a handler may go on working past it.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			// Fails only where there is no connection to set it on (a
			// recorder in a test): nothing to protect there.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		next.ServeHTTP(w, r)
	})
}

// Serve answers HTTP on ln and drains the inbox until ctx ends, then shuts
// down in order: stop accepting and finish in-flight requests, then let the
// worker finish the delivery it holds. The caller closes the store after.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
	}
	workerCtx, stopWorker := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, loop := range append([]func(context.Context){func(ctx context.Context) { s.worker.Run(ctx) }, s.prune}, s.opts.Loops...) {
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

// prune drops the payloads of processed deliveries older than Retention,
// at start and then every PruneEvery, for as long as ctx lasts. The store
// works in small batches, so deliveries arriving meanwhile wait for the
// writer only briefly.
func (s *Service) prune(ctx context.Context) {
	p, ok := s.opts.Store.(store.PayloadPruner)
	if !ok {
		return
	}
	log := s.opts.Log.With("component", "retention")
	tick := time.NewTicker(s.opts.PruneEvery)
	defer tick.Stop()
	for {
		before := s.opts.Now().Add(-s.opts.Retention)
		n, err := p.PruneDeliveryPayloads(ctx, before, 0)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("pruning delivery payloads failed; trying again later", "err", err, "retry_in", s.opts.PruneEvery)
		case n > 0:
			log.Info("pruned delivery payloads", "deliveries", n, "received_before", before, "retention", s.opts.Retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

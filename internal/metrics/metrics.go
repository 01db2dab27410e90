// Package metrics holds shipbot's Prometheus collectors. They live on one
// registry owned by this package rather than the global default so that
// tests can read them without cross-talk from other libraries.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

var (
	// Registry is what GET /metrics serves.
	Registry = prometheus.NewRegistry()

	// Deliveries counts webhook deliveries by event and outcome
	// (accepted, duplicate, ignored, bad_signature, malformed, too_large, error).
	Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shipbot_webhook_deliveries_total",
		Help: "Webhook deliveries received, by event and outcome.",
	}, []string{"event", "outcome"})

	// IntakeSeconds is the time from reading a delivery to acknowledging it.
	IntakeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "shipbot_webhook_intake_seconds",
		Help:    "Time to verify, persist and acknowledge a webhook delivery.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1},
	})

	// GitHubCalls counts GitHub REST calls by endpoint class and HTTP status
	// ("error" when no response arrived).
	GitHubCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shipbot_github_api_calls_total",
		Help: "GitHub API calls, by endpoint class and status.",
	}, []string{"class", "status"})

	// DeliveriesFailed counts deliveries whose processing failed for good:
	// retries exhausted, or a failure retrying cannot fix. Each is also in
	// the log once at error level and on the dashboard.
	DeliveriesFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shipbot_webhook_deliveries_failed_total",
		Help: "Webhook deliveries whose processing failed for good (retries exhausted or permanent failure), by event.",
	}, []string{"event"})

	// InboxDepth is the number of accepted deliveries not yet processed.
	InboxDepth = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "shipbot_inbox_depth",
		Help: "Webhook deliveries persisted but not yet processed.",
	})
)

func init() {
	Registry.MustRegister(Deliveries, DeliveriesFailed, IntakeSeconds, GitHubCalls, InboxDepth,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

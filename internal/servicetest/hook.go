package servicetest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/githubtest"
)

// WebhookPath is where the service takes GitHub's deliveries.
const WebhookPath = "/webhooks/github"

// Delivery is one webhook delivery.
type Delivery struct {
	Event, ID string
	Body      []byte
}

// Deliveries numbers a test's deliveries: delivery-1, delivery-2, … It is
// safe for concurrent use; its zero value is ready.
type Deliveries struct{ n atomic.Int64 }

// New is a delivery of event with body under a fresh id.
func (s *Deliveries) New(event string, body []byte) Delivery {
	return Delivery{Event: event, ID: fmt.Sprintf("delivery-%d", s.n.Add(1)), Body: body}
}

// Hook sends deliveries to a service as GitHub does, signed with Secret.
type Hook struct {
	URL    string // the webhook endpoint (…/webhooks/github)
	Secret []byte
	// Timeout bounds each delivery Send makes; zero means DefaultLimit.
	Timeout time.Duration
}

// Post sends d and returns the answer's status. The answer's body is read
// and closed.
func (h Hook) Post(ctx context.Context, d Delivery) (int, error) {
	resp, err := githubtest.Deliver(ctx, h.URL, d.Event, d.ID, d.Body, h.Secret)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Send sends d and returns the answer's status; it fails tb if d could
// not be sent.
func (h Hook) Send(tb testing.TB, d Delivery) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(h.Timeout, DefaultLimit))
	defer cancel()
	code, err := h.Post(ctx, d)
	if err != nil {
		tb.Fatalf("deliver %s %s: %v", d.Event, d.ID, err)
	}
	return code
}

// SendOK sends each of ds in turn and requires GitHub-style
// acknowledgements (202 for a new delivery, 200 for a known one).
func (h Hook) SendOK(tb testing.TB, ds ...Delivery) {
	tb.Helper()
	for _, d := range ds {
		if code := h.Send(tb, d); code != http.StatusAccepted && code != http.StatusOK {
			tb.Fatalf("delivery %s (%s) answered %d", d.ID, d.Event, code)
		}
	}
}

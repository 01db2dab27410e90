// Package webhook takes GitHub deliveries in: it verifies them, writes them
// to the durable inbox and acknowledges them, then a Worker drains the inbox
// and hands each delivery to the Handler registered for its event.
//
// Nothing is processed on the request path: GitHub waits at most 10 s for an
// answer and redelivers on failure, so the endpoint's only job is to make
// the delivery durable and say so quickly.
package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/metrics"
	"github.com/shipbot/shipbot/internal/store"
)

// MaxBody is GitHub's cap on a delivery's payload (25 MB); anything larger
// did not come from GitHub.
const MaxBody = 25 << 20

// Intake is the POST /webhooks/github endpoint.
type Intake struct {
	Secret []byte
	Inbox  store.Inbox
	// Wants reports whether some handler acts on the event and action;
	// everything else is acknowledged with 202 and recorded as ignored.
	Wants func(event, action string) bool
	// Wake nudges the worker after a delivery is stored; may be nil.
	Wake func()
	Log  *slog.Logger
}

// envelope is the part of every payload the intake needs to route and index
// a delivery; the handlers decode the rest.
type envelope struct {
	Action       string `json:"action"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

type answer struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Handle is the echo handler.
func (in *Intake) Handle(c echo.Context) error {
	start := time.Now()
	req := c.Request()
	event := req.Header.Get("X-GitHub-Event")
	id := req.Header.Get("X-GitHub-Delivery")
	outcome, code, msg := in.take(req, event, id)
	metrics.Deliveries.WithLabelValues(metricEvent(event), outcome).Inc()
	metrics.IntakeSeconds.Observe(time.Since(start).Seconds())
	lvl := slog.LevelDebug
	if code >= 400 {
		lvl = slog.LevelWarn
	}
	if in.Log.Enabled(req.Context(), lvl) {
		in.Log.Log(req.Context(), lvl, "webhook delivery", "event", event, "delivery", id, "outcome", outcome, "status", code)
	}
	a := answer{Status: outcome}
	if code >= 400 {
		a.Error = msg
	}
	return c.JSON(code, a)
}

// take returns the metric outcome, the HTTP status and, for errors, a
// message for the sender.
func (in *Intake) take(req *http.Request, event, id string) (outcome string, code int, msg string) {
	if req.ContentLength > MaxBody {
		return "too_large", http.StatusRequestEntityTooLarge, "body exceeds GitHub's 25 MB cap"
	}
	body, err := readBody(req)
	if err != nil {
		return "error", http.StatusBadRequest, "read body: " + err.Error()
	}
	if len(body) > MaxBody {
		return "too_large", http.StatusRequestEntityTooLarge, "body exceeds GitHub's 25 MB cap"
	}
	if !ValidSignature(in.Secret, body, req.Header.Get("X-Hub-Signature-256")) {
		return "bad_signature", http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256"
	}
	if event == "" || id == "" {
		return "malformed", http.StatusBadRequest, "missing X-GitHub-Event or X-GitHub-Delivery header"
	}
	payload, err := jsonPayload(req.Header.Get("Content-Type"), body)
	if err != nil {
		return "malformed", http.StatusBadRequest, err.Error()
	}
	env, err := decodeEnvelope(payload)
	if err != nil {
		return "malformed", http.StatusBadRequest, "malformed JSON payload: " + err.Error()
	}
	if event == "ping" {
		return "ping", http.StatusOK, ""
	}
	d := store.Delivery{ID: id, Event: event, Action: env.Action, ReceivedAt: time.Now()}
	if env.Repository != nil {
		d.Repo = env.Repository.FullName
	}
	if env.Installation != nil {
		d.Installation = env.Installation.ID
	}
	wanted := in.Wants != nil && in.Wants(event, env.Action)
	if wanted {
		d.Status, d.Payload = store.StatusPending, payload
	} else {
		// Recorded so an operator can see what arrived, but without the
		// payload: nothing will ever read it.
		d.Status = store.StatusIgnored
	}
	inserted, err := in.Inbox.SaveDelivery(req.Context(), d)
	if err != nil {
		in.Log.Error("persist delivery", "delivery", id, "err", err)
		// 500 makes GitHub show the failure; the delivery can be redelivered.
		return "error", http.StatusInternalServerError, "could not persist delivery"
	}
	switch {
	case !inserted:
		return "duplicate", http.StatusOK, ""
	case !wanted:
		return "ignored", http.StatusAccepted, ""
	}
	if in.Wake != nil {
		in.Wake()
	}
	return "accepted", http.StatusAccepted, ""
}

// maxPrealloc bounds the buffer sized from Content-Length before any byte
// arrives; typical deliveries are far smaller.
const maxPrealloc = 1 << 20

// readBody reads at most MaxBody+1 bytes of the request body. GitHub sends
// a Content-Length, so the buffer is sized once instead of grown and copied
// from 512 bytes up, which for a 25 KB delivery was more than half of what
// the whole request allocated.
func readBody(req *http.Request) ([]byte, error) {
	size := req.ContentLength
	if size < 0 || size > maxPrealloc {
		// Unknown (chunked), or large: grow as it arrives rather than
		// allocate what an unverified header claims.
		size = 0
	}
	// The spare MinRead bytes let ReadFrom see EOF without growing.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(req.Body, MaxBody+1)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// jsonPayload returns the JSON document of a delivery. A GitHub webhook can
// be configured to send application/x-www-form-urlencoded, with the JSON in
// the "payload" field; the signature covers the raw body either way.
func jsonPayload(contentType string, body []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("malformed form body: " + err.Error())
	}
	p := form.Get("payload")
	if p == "" {
		return nil, errors.New("form body has no payload field")
	}
	return []byte(p), nil
}

// ValidSignature checks X-Hub-Signature-256: "sha256=" followed by the
// lowercase hex HMAC-SHA256 of the exact body, compared in constant time.
func ValidSignature(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, Signature(secret, body))
}

// Signature is the raw HMAC-SHA256 of body under secret.
func Signature(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// SignatureHeader is the X-Hub-Signature-256 value for body.
func SignatureHeader(secret, body []byte) string {
	return "sha256=" + hex.EncodeToString(Signature(secret, body))
}

// knownEvents bounds the event label's cardinality: the header is
// attacker-controlled until the signature is checked, and metrics are
// counted for rejected deliveries too.
var knownEvents = map[string]bool{
	"ping": true, "push": true, "pull_request": true, "pull_request_review": true,
	"issue_comment": true, "check_suite": true, "check_run": true, "status": true,
	"installation": true, "installation_repositories": true, "deployment": true,
	"deployment_status": true, "workflow_run": true, "release": true, "create": true, "delete": true,
}

func metricEvent(event string) string {
	if knownEvents[event] {
		return event
	}
	return "other"
}

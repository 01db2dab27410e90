// Package webhook takes GitHub deliveries in: it verifies them, writes them
// to the durable inbox and acknowledges them, then a Worker drains the inbox
// and hands each delivery to the Handler registered for its event.
//
// Nothing is processed on the request path: GitHub waits at most 10 s for an
// answer and redelivers on failure, so the endpoint's only job is to make
// the delivery durable and say so quickly.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/semaphore"

	"github.com/shipbot/shipbot/internal/metrics"
	"github.com/shipbot/shipbot/internal/store"
)

// MaxBody is GitHub's cap on a delivery's payload (25 MB); anything larger
// did not come from GitHub.
const MaxBody = 25 << 20

// A body has to be read whole before its signature says whether it came
// from GitHub, so unsigned requests cost what their bodies weigh. Small
// bodies (GitHub's deliveries are mostly 5-100 KB) are read at once, each
// into a buffer of its declared size. Large ones, and those of unknown
// length (chunked), take a turn among LargeBodies, in reused buffers
// (largeBufs): before, 40 clients sending 25 MB each at once took the
// process to 1.9 GB RSS; now it peaks at about 130 MB.
const (
	// LargeBody is the declared length above which a body waits for a turn.
	LargeBody = 1 << 20
	// DefaultLargeBodies is how many large bodies are read at once. GitHub
	// sends few deliveries over 1 MB; two at a time read a flood of 25 MB
	// bodies at loopback speed with a handful of 25 MB buffers, well under
	// the design's 300 MB.
	DefaultLargeBodies = 2
	// DefaultLargeBodyWait is how long a large body waits for its turn
	// before it is answered 503: GitHub gives up on a delivery after 10 s.
	DefaultLargeBodyWait = 5 * time.Second
)

// Intake is the POST /webhooks/github endpoint.
type Intake struct {
	Secret []byte
	Inbox  store.Inbox
	// Wants reports whether some handler acts on the event and action;
	// everything else is acknowledged with 202 and recorded as ignored.
	Wants func(event, action string) bool
	// Wake nudges the worker's lane for the event after a delivery of it
	// is stored; may be nil.
	Wake func(event string)
	Log  *slog.Logger
	// LargeBodies is how many bodies over LargeBody (or chunked) are read
	// at once; zero means DefaultLargeBodies.
	LargeBodies int
	// LargeBodyWait bounds a large body's wait for its turn; past it the
	// answer is 503 with Retry-After. Zero means DefaultLargeBodyWait.
	LargeBodyWait time.Duration

	largeOnce sync.Once
	large     *semaphore.Weighted
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
	if code == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	if mayLeaveBodyUnread[outcome] && code != http.StatusInternalServerError {
		// Answered with the body (possibly) not read to its end: without
		// this, net/http would first read up to 256 KB more of a body
		// nobody wants, waiting on a client that may be stalling, before
		// sending the answer. Closing also ends the connection of a
		// client that sends what GitHub never would.
		c.Response().Header().Set("Connection", "close")
	}
	return c.JSON(code, a)
}

// mayLeaveBodyUnread are the outcomes of refusals that can happen before
// the body is read to its end (read errors are "error" with status 400).
var mayLeaveBodyUnread = map[string]bool{
	"too_large": true, "bad_signature": true, "busy": true, "timeout": true, "error": true,
}

// retryAfterSeconds is the Retry-After of a 503 for a busy intake: long
// enough for the large bodies ahead to be read.
const retryAfterSeconds = 5

// take returns the metric outcome, the HTTP status and, for errors, a
// message for the sender.
func (in *Intake) take(req *http.Request, event, id string) (outcome string, code int, msg string) {
	if req.ContentLength > MaxBody {
		return "too_large", http.StatusRequestEntityTooLarge, "body exceeds GitHub's 25 MB cap"
	}
	// A request without a well-formed signature is refused before its
	// body is read: no body can make it valid.
	wantMAC, ok := parseSignature(req.Header.Get("X-Hub-Signature-256"))
	if !ok || len(in.Secret) == 0 {
		return "bad_signature", http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256"
	}
	var body []byte
	var err error
	verified := false
	if req.ContentLength < 0 || req.ContentLength > LargeBody {
		release, ok := in.largeTurn(req.Context())
		if !ok {
			return "busy", http.StatusServiceUnavailable, "too many large deliveries at once; retry later"
		}
		// The turn is held until the delivery is answered, because the
		// buffer is referenced until then.
		defer release()
		bp := largeBufs.Get().(*[]byte)
		defer func() {
			// A verified body may be stored, and the store may keep it:
			// its buffer leaves the pool. Refused bodies' buffers are
			// reused, which is what bounds a flood of them.
			if !verified {
				largeBufs.Put(bp)
			}
		}()
		body, err = readLarge(req, *bp)
	} else {
		body, err = readSmall(req)
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The service's body deadline passed (see service.Options); the
		// server closes the connection after this answer.
		return "timeout", http.StatusRequestTimeout, "body not received in time"
	case err != nil:
		return "error", http.StatusBadRequest, "read body: " + err.Error()
	case len(body) > MaxBody:
		return "too_large", http.StatusRequestEntityTooLarge, "body exceeds GitHub's 25 MB cap"
	}
	if !hmac.Equal(wantMAC, Signature(in.Secret, body)) {
		return "bad_signature", http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256"
	}
	verified = true
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
		in.logPing(req.Context(), id, payload)
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
		in.Wake(event)
	}
	return "accepted", http.StatusAccepted, ""
}

// largeTurn waits for a turn to read a large body, at most LargeBodyWait.
func (in *Intake) largeTurn(ctx context.Context) (release func(), ok bool) {
	in.largeOnce.Do(func() {
		n := in.LargeBodies
		if n <= 0 {
			n = DefaultLargeBodies
		}
		in.large = semaphore.NewWeighted(int64(n))
	})
	if in.large.TryAcquire(1) {
		return func() { in.large.Release(1) }, true
	}
	wait := in.LargeBodyWait
	if wait <= 0 {
		wait = DefaultLargeBodyWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := in.large.Acquire(ctx, 1); err != nil {
		return nil, false
	}
	return func() { in.large.Release(1) }, true
}

// logPing says at info level that GitHub reached the service: a ping is
// what GitHub sends when an App's webhook is set up or its URL changes,
// so it is the first sign that the set-up works.
func (in *Intake) logPing(ctx context.Context, id string, payload []byte) {
	var p struct {
		HookID int64 `json:"hook_id"`
		Hook   struct {
			AppID int64  `json:"app_id"`
			Type  string `json:"type"`
		} `json:"hook"`
	}
	_ = json.Unmarshal(payload, &p) // already checked to be an object; fields are optional
	attrs := []slog.Attr{slog.String("delivery", id)}
	if p.HookID != 0 {
		attrs = append(attrs, slog.Int64("hook_id", p.HookID))
	}
	if p.Hook.AppID != 0 {
		attrs = append(attrs, slog.Int64("app_id", p.Hook.AppID))
	}
	if p.Hook.Type != "" {
		attrs = append(attrs, slog.String("hook_type", p.Hook.Type))
	}
	in.Log.LogAttrs(ctx, slog.LevelInfo, "GitHub App reached us", attrs...)
}

// readSmall reads a body of at most LargeBody bytes whose length is
// declared. The buffer is allocated once, at that length, and filled:
// growing it from 512 bytes up was more than half of what a 25 KB delivery
// allocated. net/http ends the body at the declared length, so it cannot
// overrun the buffer.
func readSmall(req *http.Request) ([]byte, error) {
	buf := make([]byte, req.ContentLength)
	if _, err := io.ReadFull(req.Body, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("body ended before its Content-Length of %d bytes: %w", req.ContentLength, err)
		}
		return nil, err
	}
	return buf, nil
}

// largeBufs holds the buffers large bodies are read into, each of MaxBody+1
// bytes. While large bodies keep coming (a flood of unsigned 25 MB
// requests) the same few buffers are refilled, instead of each request
// leaving 25-64 MB of garbage (a fresh buffer, or a chunked body's growing
// copies) for the collector to catch up with; measured, that garbage was
// most of the process's peak. When they stop, the pool empties itself
// within two collections.
var largeBufs = sync.Pool{New: func() any {
	b := make([]byte, MaxBody+1)
	return &b
}}

// readLarge reads a body into buf (MaxBody+1 bytes): all of it when its
// length is declared (at most MaxBody, as the take checked), else until it
// ends or fills buf, which means it is over the cap.
func readLarge(req *http.Request, buf []byte) ([]byte, error) {
	if n := req.ContentLength; n >= 0 {
		b := buf[:n]
		if _, err := io.ReadFull(req.Body, b); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("body ended before its Content-Length of %d bytes: %w", n, err)
			}
			return nil, err
		}
		return b, nil
	}
	n := 0
	for n < len(buf) {
		m, err := req.Body.Read(buf[n:])
		n += m
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// parseSignature decodes X-Hub-Signature-256 ("sha256=" and 64 lowercase
// or uppercase hex digits) into the MAC it claims.
func parseSignature(header string) ([]byte, bool) {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return nil, false
	}
	mac, err := hex.DecodeString(hexSig)
	if err != nil {
		return nil, false
	}
	return mac, true
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
	got, ok := parseSignature(header)
	if !ok || len(secret) == 0 {
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
	"merge_group": true,
}

func metricEvent(event string) string {
	if knownEvents[event] {
		return event
	}
	return "other"
}

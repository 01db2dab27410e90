package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// target is a simulated Spinnaker (Echo): it takes webhook triggers,
// enforces the payload-constraint secret the way Echo does, answers
// {"eventProcessed":true,"eventId":…}, deploys for a random while and then
// reports the outcome to the callback URL, retrying until the service takes
// it (a callback that arrives while the service is down is the
// downstream's to retry). Like an idempotent downstream, a trigger whose
// Idempotency-Key it has seen is the same execution: same eventId, no
// second deploy.
//
// It records every trigger and checks, from its side of the wire, that no
// stage ever has two executions at once: a trigger for stage S arrives
// only after the previous S execution's outcome was taken by the service.
type target struct {
	tb                 testing.TB
	srv                *httptest.Server
	secret             string
	minDelay, maxDelay time.Duration
	client             *http.Client
	ctx                context.Context
	cancel             context.CancelFunc
	wg                 sync.WaitGroup

	mu       sync.Mutex
	rng      *rand.Rand
	triggers []trig
	execs    map[string]*texec // by Idempotency-Key
	active   map[string]*texec // stage → its latest execution
	entered  map[string][]string
	sent     map[string]string // run/stage/attempt → key and callback URL
	problems []string
	hold     *hold
	lost     int // held triggers dropped before processing
}

// trig is one trigger request as the target saw it.
type trig struct {
	At                                        time.Time
	Stage, Version, Tag, RunID, Key, Callback string
	Attempt                                   int
	Rollback                                  bool
	Dup                                       bool // a key seen before: the same execution again
	// From is the replica that sent it (the rig makes each replica's
	// version its name: User-Agent shipbot/<name>).
	From string
}

// Execution states at the target, as far as the outcome's delivery goes.
const (
	deploying = iota // no report taken yet
	reporting        // a callback is in flight
	uncertain        // a callback ended without an answer: the service may or may not have taken it
	reported         // the service took the outcome
)

type texec struct {
	trig
	eventID string
	state   int
	// taken is when the service took the outcome (202).
	taken time.Time
	// Triggers of the same stage that arrived while this execution's
	// report was in flight (inflight) or after a report that ended without
	// an answer (pending): fine if the service had taken the outcome by
	// then, a violation if it turns out it had not.
	inflight, pending []string
	everUncertain     bool
}

// hold holds the next new trigger of a stage until released.
type hold struct {
	stage   string
	held    chan struct{}
	release chan struct{}
	fired   bool
}

func newTarget(tb testing.TB, secret string, minDelay, maxDelay time.Duration) *target {
	t := &target{
		tb: tb, secret: secret, minDelay: minDelay, maxDelay: max(maxDelay, minDelay),
		client:  &http.Client{Timeout: 10 * time.Second},
		rng:     rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		execs:   map[string]*texec{},
		active:  map[string]*texec{},
		entered: map[string][]string{},
		sent:    map[string]string{},
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.srv = httptest.NewServer(http.HandlerFunc(t.serve))
	return t
}

func (t *target) close() {
	t.cancel()
	t.mu.Lock()
	if h := t.hold; h != nil && !isClosed(h.release) {
		close(h.release)
	}
	t.mu.Unlock()
	t.wg.Wait()
	t.srv.Close()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (t *target) problem(format string, args ...any) {
	t.problems = append(t.problems, fmt.Sprintf(format, args...))
}

func (t *target) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var p map[string]any
	if err != nil || json.Unmarshal(body, &p) != nil {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	str := func(k string) string { s, _ := p[k].(string); return s }
	attempt, _ := p["attempt"].(float64)
	tr := trig{
		At: time.Now(), Stage: str("stage"), Version: str("version"), Tag: str("tag"), RunID: str("run_id"),
		Key: r.Header.Get("Idempotency-Key"), Callback: str("callback_url"), Attempt: int(attempt),
		Rollback: p["rollback"] == true, From: strings.TrimPrefix(r.Header.Get("User-Agent"), "shipbot/"),
	}
	// Echo matches a pipeline only when every constraint is met; the answer
	// says "processed" either way.
	matched := str("deploy_key") == t.secret
	stageOfURL := strings.TrimPrefix(r.URL.Path, "/webhooks/webhook/api-")

	t.mu.Lock()
	if !matched {
		t.problem("trigger %s without the constraint secret", tr.Key)
	}
	if stageOfURL != tr.Stage {
		t.problem("trigger for stage %s sent to %s", tr.Stage, r.URL.Path)
	}
	if want := tr.RunID + "-" + tr.Stage + "-" + strconv.Itoa(tr.Attempt); tr.Key != want {
		t.problem("Idempotency-Key %q; want %q", tr.Key, want)
	}
	id := tr.RunID + "/" + tr.Stage + "/" + strconv.Itoa(tr.Attempt)
	if prev, ok := t.sent[id]; ok && prev != tr.Key+" "+tr.Callback {
		t.problem("(run, stage, attempt) %s sent as %q, earlier as %q", id, tr.Key+" "+tr.Callback, prev)
	}
	t.sent[id] = tr.Key + " " + tr.Callback
	if e, ok := t.execs[tr.Key]; ok {
		tr.Dup = true
		t.triggers = append(t.triggers, tr)
		if e.Version != tr.Version || e.Callback != tr.Callback {
			t.problem("re-sent trigger %s changed: version %s→%s, callback changed %v", tr.Key, e.Version, tr.Version, e.Callback != tr.Callback)
		}
		evt := e.eventID
		t.mu.Unlock()
		reply(w, evt)
		return
	}
	// A held trigger: the test crashes the service while it waits.
	if h := t.hold; h != nil && !h.fired && h.stage == tr.Stage {
		h.fired = true
		close(h.held)
		t.mu.Unlock()
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
		t.mu.Lock()
		if r.Context().Err() != nil && t.rng.IntN(2) == 0 {
			// The connection dropped before Echo took the event: nothing
			// happened here, the re-sent trigger is the first one.
			t.lost++
			t.mu.Unlock()
			return
		}
		// Otherwise Echo took the event although its answer was lost.
	}
	t.triggers = append(t.triggers, tr)
	e := t.admit(tr)
	t.mu.Unlock()
	reply(w, e.eventID)
}

// admit starts a new execution; t.mu is held.
func (t *target) admit(tr trig) *texec {
	if prev := t.active[tr.Stage]; prev != nil {
		switch prev.state {
		case deploying:
			t.problem("stage %s: %s (%s) triggered while %s (%s) was still deploying, its outcome not taken",
				tr.Stage, tr.Version, tr.Key, prev.Version, prev.Key)
		case reporting:
			prev.inflight = append(prev.inflight, tr.Key)
		case uncertain:
			prev.pending = append(prev.pending, tr.Key)
		}
	}
	if !tr.Rollback {
		ent := t.entered[tr.Stage]
		if n := len(ent); n > 0 && !versionLess(ent[n-1], tr.Version) {
			t.problem("stage %s: %s entered after %s", tr.Stage, tr.Version, ent[n-1])
		}
		t.entered[tr.Stage] = append(ent, tr.Version)
	}
	e := &texec{trig: tr, eventID: fmt.Sprintf("evt-%d", len(t.execs)+1)}
	t.execs[tr.Key] = e
	t.active[tr.Stage] = e
	delay := t.minDelay
	if t.maxDelay > t.minDelay {
		delay += time.Duration(t.rng.Int64N(int64(t.maxDelay - t.minDelay)))
	}
	t.wg.Add(1)
	go t.deploy(e, delay)
	return e
}

func reply(w http.ResponseWriter, eventID string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"eventProcessed": true, "eventId": eventID})
}

// deploy "deploys" for delay, then reports success until the service
// takes the report.
func (t *target) deploy(e *texec, delay time.Duration) {
	defer t.wg.Done()
	select {
	case <-time.After(delay):
	case <-t.ctx.Done():
		return
	}
	body, _ := json.Marshal(map[string]string{"state": "succeeded", "url": t.srv.URL + "/pipelines/" + e.eventID})
	for try := 0; ; try++ {
		t.mu.Lock()
		e.state = reporting
		t.mu.Unlock()
		code, text := t.post(e.Callback, body)
		t.mu.Lock()
		inflight := e.inflight
		e.inflight = nil
		switch {
		case code == http.StatusAccepted:
			// Recorded now: triggers that came after an earlier report
			// ended without an answer came before the outcome was taken.
			if len(e.pending) > 0 {
				t.problem("stage %s: %v triggered before the outcome of %s (%s) was taken",
					e.Stage, e.pending, e.Version, e.Key)
			}
			e.state, e.pending, e.taken = reported, nil, time.Now()
			t.mu.Unlock()
			return
		case code == http.StatusOK:
			// Ignored: an earlier report had been taken.
			e.state, e.pending = reported, nil
			t.mu.Unlock()
			return
		case code == http.StatusServiceUnavailable && strings.Contains(text, noBackend):
			// The report reached no process at all.
			if e.everUncertain {
				// An earlier report may have been taken.
				e.pending = append(e.pending, inflight...)
				e.state = uncertain
				break
			}
			if len(inflight) > 0 {
				t.problem("stage %s: %v triggered while the outcome of %s (%s) could not be reported",
					e.Stage, inflight, e.Version, e.Key)
			}
			e.state = deploying
		case code == http.StatusNotFound:
			t.problem("callback of %s answered 404: %s", e.Key, text)
			t.mu.Unlock()
			return
		default:
			// Cut in flight (a crash), or the service failed: it may or may
			// not have recorded the outcome.
			e.pending = append(e.pending, inflight...)
			e.state, e.everUncertain = uncertain, true
		}
		t.mu.Unlock()
		select {
		case <-time.After(time.Duration(10+5*min(try, 10)) * time.Millisecond):
		case <-t.ctx.Done():
			return
		}
	}
}

func (t *target) post(url string, body []byte) (int, string) {
	req, err := http.NewRequestWithContext(t.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

// holdNext holds the next new trigger for stage: held closes when it
// arrived; the request then waits until release is called or the client
// goes away.
func (t *target) holdNext(stage string) (held <-chan struct{}, release func()) {
	h := &hold{stage: stage, held: make(chan struct{}), release: make(chan struct{})}
	t.mu.Lock()
	t.hold = h
	t.mu.Unlock()
	var once sync.Once
	return h.held, func() {
		once.Do(func() {
			t.mu.Lock()
			if !isClosed(h.release) {
				close(h.release)
			}
			if t.hold == h {
				t.hold = nil
			}
			t.mu.Unlock()
		})
	}
}

// snapshot returns the recorded triggers and problems.
func (t *target) snapshot() ([]trig, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]trig(nil), t.triggers...), append([]string(nil), t.problems...)
}

// firstTrigger is when the first trigger of tag arrived, if one did.
func (t *target) firstTrigger(tag string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.triggers {
		if tr.Tag == tag {
			return tr.At, true
		}
	}
	return time.Time{}, false
}

// taken is when the service took the outcome of tag's execution at stage.
func (t *target) taken(stage, tag string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.execs {
		if e.Stage == stage && e.Tag == tag && !e.taken.IsZero() {
			return e.taken, true
		}
	}
	return time.Time{}, false
}

// allReported reports whether every execution's outcome was taken.
func (t *target) allReported() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.execs {
		if e.state != reported {
			return false
		}
	}
	return true
}

// checkTarget asserts the target's view: no problems recorded, every
// (run, stage) triggered under one key only, and each stage entered in
// increasing version order.
func checkTarget(tb testing.TB, t *target) (execs map[string][]trig) {
	tb.Helper()
	trigs, problems := t.snapshot()
	for _, p := range problems {
		tb.Error("target: " + p)
	}
	keys := map[string]map[string]bool{} // run/stage → keys
	execs = map[string][]trig{}          // stage → new executions in arrival order
	for _, tr := range trigs {
		id := tr.RunID + "/" + tr.Stage
		if keys[id] == nil {
			keys[id] = map[string]bool{}
		}
		keys[id][tr.Key] = true
		if !tr.Dup {
			execs[tr.Stage] = append(execs[tr.Stage], tr)
		}
	}
	for id, ks := range keys {
		if len(ks) != 1 {
			tb.Errorf("target: %s triggered under %d idempotency keys: %v", id, len(ks), ks)
		}
	}
	return execs
}

package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// spinnaker stands in for Spinnaker's Echo: it takes webhook triggers,
// checks the payload-constraint secret the way Echo does (a required top-level
// field), answers {"eventProcessed":true,"eventId":…} at once, and reports
// the outcome to the callback URL after a deploy-like delay.
type spinnaker struct {
	srv      *httptest.Server
	secret   string
	delay    time.Duration
	failTags map[string]bool // tags whose deploy fails

	n      atomic.Int64
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

func newSpinnaker(secret string, delay time.Duration) *spinnaker {
	s := &spinnaker{secret: secret, delay: delay, failTags: map[string]bool{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *spinnaker) close() {
	s.cancel()
	s.wg.Wait()
	s.srv.Close()
}

func (s *spinnaker) serve(w http.ResponseWriter, r *http.Request) {
	var p map[string]any
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	id := fmt.Sprintf("evt-%04d", s.n.Add(1))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"eventProcessed": true, "eventId": id})
	// Like Echo: a payload without the constraint matches no pipeline, and
	// nothing deploys, although the answer above said "processed".
	if p["deploy_key"] != s.secret {
		return
	}
	callback, _ := p["callback_url"].(string)
	tag, _ := p["tag"].(string)
	state := "succeeded"
	if s.failTags[tag] && p["rollback"] != true {
		state = "failed"
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-time.After(s.delay):
		case <-s.ctx.Done():
			return
		}
		body, _ := json.Marshal(map[string]string{"state": state, "url": s.srv.URL + "/pipelines/" + id})
		req, _ := http.NewRequestWithContext(s.ctx, http.MethodPost, callback, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
}

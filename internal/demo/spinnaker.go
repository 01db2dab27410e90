package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
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

	mu   sync.Mutex
	runs map[string]*execution // by event id, for the execution pages
}

// execution is what the simulated Spinnaker did with one trigger; its page
// is the link shipbot shows for the stage.
type execution struct {
	id, pipeline, stage, tag, state string
	rollback                        bool
	started, ended                  time.Time
}

func newSpinnaker(secret string, delay time.Duration) *spinnaker {
	s := &spinnaker{secret: secret, delay: delay, failTags: map[string]bool{}, runs: map[string]*execution{}}
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
	if r.Method == http.MethodGet {
		s.page(w, r)
		return
	}
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
	stage, _ := p["stage"].(string)
	state := "succeeded"
	if s.failTags[tag] && p["rollback"] != true {
		state = "failed"
	}
	ex := &execution{id: id, pipeline: path.Base(r.URL.Path), stage: stage, tag: tag, state: "running",
		rollback: p["rollback"] == true, started: time.Now()}
	s.mu.Lock()
	s.runs[id] = ex
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-time.After(s.delay):
		case <-s.ctx.Done():
			return
		}
		s.mu.Lock()
		ex.state, ex.ended = state, time.Now()
		s.mu.Unlock()
		body, _ := json.Marshal(map[string]string{"state": state, "url": s.srv.URL + "/pipelines/" + id})
		req, _ := http.NewRequestWithContext(s.ctx, http.MethodPost, callback, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
}

var executionPage = template.Must(template.New("execution").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>execution {{.ID}}</title>
<style>body{font:15px/1.45 system-ui,sans-serif;max-width:50rem;margin:1.5rem auto;padding:0 1rem}td,th{text-align:left;padding:.2rem .8rem .2rem 0}</style></head><body>
<p>simulated Spinnaker — a stand-in for Spinnaker's Deck that shows what the demo's deploy system did; nothing here is real</p>
<h1>execution {{.ID}}</h1>
<table>
<tr><th>pipeline</th><td>{{.Pipeline}}</td></tr>
<tr><th>stage</th><td>{{.Stage}}</td></tr>
<tr><th>version</th><td>{{.Tag}}{{if .Rollback}} (rollback){{end}}</td></tr>
<tr><th>state</th><td>{{.State}}</td></tr>
<tr><th>started</th><td>{{.Started}}</td></tr>
<tr><th>took</th><td>{{.Took}}</td></tr>
</table></body></html>
`))

// page shows an execution: the link shipbot puts on the PR for a stage.
func (s *spinnaker) page(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ex := s.runs[path.Base(r.URL.Path)]
	var v struct {
		ID, Pipeline, Stage, Tag, State, Started, Took string
		Rollback                                       bool
	}
	if ex != nil {
		v.ID, v.Pipeline, v.Stage, v.Tag, v.State, v.Rollback = ex.id, ex.pipeline, ex.stage, ex.tag, ex.state, ex.rollback
		v.Started = ex.started.Format("15:04:05")
		if !ex.ended.IsZero() {
			v.Took = ex.ended.Sub(ex.started).Round(time.Millisecond).String()
		}
	}
	s.mu.Unlock()
	if ex == nil || !strings.HasPrefix(r.URL.Path, "/pipelines/") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = executionPage.Execute(w, v)
}

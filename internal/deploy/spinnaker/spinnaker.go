// Package spinnaker is the spinnaker target kind: a stage's trigger is
// POSTed to a Spinnaker Echo webhook (/webhooks/webhook/{source}), and
// its outcome comes from the callback or, when the target sets gate_url
// and application, from polling Spinnaker's executions API through Gate.
//
// Echo answers 200 {"eventProcessed":true,"eventId":…} whether or not a
// pipeline matched, so an accepted trigger proves only that Echo took the
// event. An answer that is not Echo's shape (an SSO proxy's 200 login
// page, say) is an error, not an acceptance. Echo's payloadConstraints
// are unanchored, case-sensitive regex finds on payload fields, so the
// constraint secrets travel as top-level fields (deploy.Body).
package spinnaker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
)

// Kind is the kind's name in the targets file.
const Kind = "spinnaker"

// Settings are a spinnaker target's own keys; polling needs both.
type Settings struct {
	GateURL     string // Gate's base URL
	Application string // the Spinnaker application whose executions to search
}

func settings(t config.Target) Settings {
	s, _ := t.Settings.(Settings)
	return s
}

// Driver is the spinnaker kind. Its zero value is ready.
type Driver struct {
	// PollTimeout bounds one request to Gate; 0 means DefaultPollTimeout.
	PollTimeout time.Duration
}

var _ deploy.Poller = Driver{}

// Kind implements deploy.Driver.
func (Driver) Kind() string { return Kind }

// Keys implements deploy.Driver.
func (Driver) Keys() []string { return []string{"url", "signing_secret", "gate_url", "application"} }

// ReadSettings implements deploy.Driver. A target without Gate has no
// settings (nil).
func (Driver) ReadSettings(s *config.Section) any {
	if !s.Has("gate_url") && !s.Has("application") {
		return nil
	}
	var out Settings
	out.GateURL, _ = s.URL("gate_url")
	var ok bool
	if out.Application, ok = s.String("application"); ok && out.Application == "" {
		s.Errorf("application", "must not be empty")
	}
	if s.Has("gate_url") != s.Has("application") {
		// Polling needs both: Gate's address and the application to search.
		s.Errorf("", "set both gate_url and application, or neither")
	}
	return out
}

// Learns implements deploy.Driver: by polling where Gate is configured.
func (Driver) Learns(_ *deploy.Env, t config.Target) deploy.Learning {
	if s := settings(t); s.GateURL != "" && s.Application != "" {
		return deploy.ByPolling
	}
	return deploy.ByCallback
}

// Trigger implements deploy.Driver: POST to the Echo webhook, retried as
// every HTTP trigger is, and accepted only by Echo's answer.
func (Driver) Trigger(ctx context.Context, env *deploy.Env, t config.Target, p deploy.Payload) (deploy.Result, error) {
	return env.Post(ctx, t, p, echoAnswer)
}

// echoAnswer checks a 2xx from Echo. Echo answers
// {"eventProcessed":true,"eventId":"…"}; anything else on a 2xx means
// something other than Echo answered (an auth proxy's login page, a
// wrong path on a catch-all server), and calling that accepted would
// report a deploy that never started.
func echoAnswer(a deploy.Answer) (string, *deploy.Refusal) {
	var ans struct {
		EventProcessed *bool  `json:"eventProcessed"`
		EventID        string `json:"eventId"`
	}
	if a.ReadErr != nil {
		// The answer was cut off; the event may or may not be in.
		return "", &deploy.Refusal{Retry: true, Reason: "read error",
			Msg: fmt.Sprintf("%d from %s, reading the answer: %v", a.Status, a.URL, deploy.Sanitize(a.ReadErr))}
	}
	if err := json.Unmarshal(a.Body, &ans); err != nil || ans.EventProcessed == nil {
		msg := fmt.Sprintf("%d from %s is not Spinnaker Echo's answer (want {\"eventProcessed\":true,\"eventId\":…})", a.Status, a.URL)
		if s := a.Snippet(); s != "" {
			msg += ": " + s
		}
		return "", &deploy.Refusal{Reason: "not an Echo answer", Msg: msg}
	}
	if !*ans.EventProcessed {
		return "", &deploy.Refusal{Reason: "event not processed",
			Msg: fmt.Sprintf("%d from %s: Echo did not process the event", a.Status, a.URL)}
	}
	return ans.EventID, nil
}

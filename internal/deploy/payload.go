package deploy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/shipbot/shipbot/internal/config"
)

// Header names of a trigger request.
const (
	IdempotencyKeyHeader = "Idempotency-Key"
	SignatureHeader      = "X-Shipbot-Signature-256"
)

// Payload is one stage execution's trigger, as the design's "Trigger
// payload" section fixes it. The JSON tags are the wire names.
type Payload struct {
	Repository string `json:"repository"` // owner/name of the merged repository
	SHA        string `json:"sha"`        // merge commit
	Version    string `json:"version"`    // 1.4.2
	Tag        string `json:"tag"`        // v1.4.2
	Stage      string `json:"stage"`      // the stage's name, not its target's
	// PullRequest is the merged PR's number; 0 for a PR-less run, and then
	// left out of the JSON.
	PullRequest int    `json:"pull_request,omitempty"`
	RunID       string `json:"run_id"`
	// Attempt counts from 1. A resend after a crash keeps it; only an
	// explicit retry or a rollback takes a new one, and so a new key.
	Attempt     int    `json:"attempt"`
	CallbackURL string `json:"callback_url"`
	// Rollback is set on the trigger that redeploys the previous version;
	// the field is absent otherwise.
	Rollback bool `json:"rollback,omitempty"`
	// Target is the wave target this trigger deploys to, only in a stage
	// of several targets (`targets:`); absent otherwise.
	Target string `json:"target,omitempty"`
	// Pipeline is the pipeline's name, only in a repository of several
	// pipelines (the `pipelines:` form); absent otherwise.
	Pipeline string `json:"pipeline,omitempty"`
}

// IdempotencyKey is exactly <run_id>-<stage>-<attempt>, and
// <run_id>-<stage>-<attempt>-<target> for a wave's target: every target
// of a wave deploys the same attempt, and each must be told apart.
func (p Payload) IdempotencyKey() string {
	key := p.RunID + "-" + p.Stage + "-" + strconv.Itoa(p.Attempt)
	if p.Target != "" {
		key += "-" + p.Target
	}
	return key
}

// Validate reports a payload that must not be sent: every field the
// downstream keys on has to be there, or two executions could share an
// idempotency key.
func (p Payload) Validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"repository", p.Repository}, {"sha", p.SHA}, {"version", p.Version},
		{"tag", p.Tag}, {"stage", p.Stage}, {"run_id", p.RunID},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("payload: missing %v", missing)
	}
	if p.Attempt < 1 {
		return fmt.Errorf("payload: attempt must count from 1, got %d", p.Attempt)
	}
	if p.PullRequest < 0 {
		return fmt.Errorf("payload: pull_request must be positive, got %d", p.PullRequest)
	}
	return nil
}

// Body is the exact JSON sent to an HTTP target: the payload's fields plus
// the target's constraint secrets as top-level fields, keys sorted, no
// trailing newline. The same inputs always give the same bytes, so a
// resend carries the same signature.
func Body(t config.Target, p Payload) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	fields := map[string]any{
		"repository":   p.Repository,
		"sha":          p.SHA,
		"version":      p.Version,
		"tag":          p.Tag,
		"stage":        p.Stage,
		"run_id":       p.RunID,
		"attempt":      p.Attempt,
		"callback_url": p.CallbackURL,
	}
	if p.PullRequest != 0 {
		fields["pull_request"] = p.PullRequest
	}
	if p.Rollback {
		fields["rollback"] = true
	}
	if p.Target != "" {
		fields["target"] = p.Target
	}
	if p.Pipeline != "" {
		fields["pipeline"] = p.Pipeline
	}
	names := make([]string, 0, len(t.Constraints))
	for k := range t.Constraints {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		// config rejects these names; checking again keeps a hand-built
		// Target from silently replacing the version or the stage.
		if _, clash := fields[k]; clash || k == "pull_request" || k == "rollback" || k == "target" || k == "pipeline" {
			return nil, fmt.Errorf("constraint %q collides with a payload field", k)
		}
		fields[k] = t.Constraints[k]
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep '<', '>' and '&' (callback URLs have queries) readable; the
	// receiver decodes either form the same.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Sign is the X-Shipbot-Signature-256 value for body: "sha256=" and the
// lowercase hex HMAC-SHA256 of the exact bytes, as GitHub signs webhooks,
// so receivers can reuse their GitHub verification code.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

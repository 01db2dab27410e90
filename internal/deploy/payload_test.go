package deploy_test

import (
	"encoding/json"
	"testing"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
)

func TestIdempotencyKeyAndBodyOfWaveTargets(t *testing.T) {
	base := deploy.Payload{Repository: "acme/api", SHA: "abc", Version: "1.2.0", Tag: "v1.2.0", Stage: "prod",
		RunID: "r1", Attempt: 2, CallbackURL: "https://bot/cb/x"}
	wave := base
	wave.Target = "eu-west"
	multi := base
	multi.Pipeline = "api"
	tests := []struct {
		name     string
		p        deploy.Payload
		key      string
		target   any
		pipeline any
	}{
		{"one target keeps <run_id>-<stage>-<attempt>", base, "r1-prod-2", nil, nil},
		{"a wave's target is part of the key and the body", wave, "r1-prod-2-eu-west", "eu-west", nil},
		{"a pipeline of several is named in the body, not the key", multi, "r1-prod-2", nil, "api"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.IdempotencyKey(); got != tc.key {
				t.Errorf("IdempotencyKey = %q; want %q", got, tc.key)
			}
			b, err := deploy.Body(config.Target{Name: "t"}, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if m["target"] != tc.target || m["pipeline"] != tc.pipeline {
				t.Errorf("body target %v pipeline %v; want %v and %v (absent when nil): %s", m["target"], m["pipeline"], tc.target, tc.pipeline, b)
			}
		})
	}
	if _, err := deploy.Body(config.Target{Name: "t", Constraints: map[string]string{"target": "x"}}, wave); err == nil {
		t.Error("a constraint named target was accepted; it would overwrite the wave's target")
	}
}

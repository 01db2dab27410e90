package config_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy/dispatch"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
	"github.com/shipbot/shipbot/internal/deploy/spinnaker"
)

// The targets file's tests read it with shipbot's own kinds of target,
// which this package cannot import (the drivers import config); its
// external tests can, and hand them to the internal ones.
func init() { config.KindsForTest = drivers.New().Kinds() }

func TestParseTargetsKinds(t *testing.T) {
	yml := `targets:
  hook:
    kind: webhook
    url: https://deploy.example/hook?x=1
    timeout: 45m
    repos: [acme/api, Acme/Web]
  gh:
    kind: github-dispatch
    workflow: deploy.yml
    repository: acme/deployments
    ref: main
    constraints: {environment: prod}
    repos: [acme/api]
  spin:
    kind: spinnaker
    url: https://echo.example/webhooks/webhook/x
    gate_url: https://gate.example
    application: api
    repos: []
alarms:
  health:
    kind: http
    url: https://status.example/firing
`
	got, err := config.ParseTargets("t.yml", []byte(yml), func(string) (string, bool) { return "", false }, drivers.New().Kinds())
	if err != nil {
		t.Fatalf("ParseTargets: %v", err)
	}
	want := config.Targets{
		Targets: map[string]config.Target{
			"hook": {Name: "hook", Kind: "webhook", URL: "https://deploy.example/hook?x=1", Timeout: 45 * time.Minute,
				Repos: []string{"acme/api", "Acme/Web"}, Line: 2},
			"gh": {Name: "gh", Kind: "github-dispatch", Settings: dispatch.Settings{Workflow: "deploy.yml", Repository: "acme/deployments", Ref: "main"},
				Constraints: map[string]string{"environment": "prod"}, Repos: []string{"acme/api"}, Line: 7},
			"spin": {Name: "spin", Kind: "spinnaker", URL: "https://echo.example/webhooks/webhook/x",
				Settings: spinnaker.Settings{GateURL: "https://gate.example", Application: "api"}, Repos: []string{}, Line: 14},
		},
		Alarms: map[string]config.Alarm{
			"health": {Name: "health", Kind: config.AlarmHTTP, URL: "https://status.example/firing", Line: 21},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(config.Target{}, config.Alarm{})); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

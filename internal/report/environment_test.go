package report

import (
	"testing"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/store"
)

// The reporter names a Deployment's environment as the configuration
// does (config.Repo.EnvironmentName, which bot run's deployed-before
// check reads): <stage>, <stage>/<target> in a wave, each prefixed by
// <pipeline>/ in the pipelines: form.
func TestEnvironmentMatchesTheConfiguration(t *testing.T) {
	api := config.Pipeline{Name: "api"}
	one := config.Stage{Name: "prod", Target: "spinnaker-prod"}
	wave := config.Stage{Name: "prod", Targets: []string{"eu", "us"}}
	for _, tc := range []struct {
		multi  bool
		stage  config.Stage
		target string // the execution's wave target
		want   string
	}{
		{false, one, "", "prod"},
		{false, wave, "eu", "prod/eu"},
		{true, one, "", "api/prod"},
		{true, wave, "us", "api/prod/us"},
	} {
		prefix := ""
		if tc.multi {
			prefix = api.Name + "/"
		}
		got := environment(prefix, store.Execution{StageName: tc.stage.Name, Target: tc.target})
		cfg := config.Repo{Multi: tc.multi}.EnvironmentName(api, tc.stage, tc.target)
		if got != tc.want || cfg != tc.want {
			t.Errorf("multi %v, target %q: reporter %q, configuration %q; want %q", tc.multi, tc.target, got, cfg, tc.want)
		}
	}
}

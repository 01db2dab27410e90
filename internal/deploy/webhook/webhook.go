// Package webhook is the webhook target kind: a stage's trigger is POSTed
// to any URL, any 2xx accepts it, and its outcome comes from the
// downstream's callback.
package webhook

import (
	"context"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
)

// Kind is the kind's name in the targets file.
const Kind = "webhook"

// Driver is the webhook kind. Its zero value is ready.
type Driver struct{}

// Kind implements deploy.Driver.
func (Driver) Kind() string { return Kind }

// Keys implements deploy.Driver.
func (Driver) Keys() []string { return []string{"url", "signing_secret"} }

// ReadSettings implements deploy.Driver: the kind has no keys of its own.
func (Driver) ReadSettings(*config.Section) any { return nil }

// Learns implements deploy.Driver: only the downstream knows.
func (Driver) Learns(*deploy.Env, config.Target) deploy.Learning { return deploy.ByCallback }

// Trigger implements deploy.Driver.
func (Driver) Trigger(ctx context.Context, env *deploy.Env, t config.Target, p deploy.Payload) (deploy.Result, error) {
	return env.Post(ctx, t, p, nil)
}

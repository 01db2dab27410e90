// Package drivers registers shipbot's target kinds: the one place that
// names them all.
package drivers

import (
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/dispatch"
	"github.com/shipbot/shipbot/internal/deploy/spinnaker"
	"github.com/shipbot/shipbot/internal/deploy/webhook"
)

// New returns a registry of every target kind, in the order the targets
// file's messages list them. A new kind is a package under
// internal/deploy implementing deploy.Driver, and one Register line here.
func New() *deploy.Registry {
	r := deploy.NewRegistry()
	r.Register(spinnaker.Driver{})
	r.Register(webhook.Driver{})
	r.Register(dispatch.Driver{})
	return r
}

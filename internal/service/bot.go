package service

import (
	"context"
	"log/slog"

	"github.com/shipbot/shipbot/internal/merge"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/preview"
	"github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

// Bot is the bot's webhook handlers and background loops, as `bot serve`
// and `bot demo` both run them.
type Bot struct {
	Store   store.Store
	Clients merge.Clients
	Log     *slog.Logger
	Owner   string
	// Observe, when set, is told of every merge verdict.
	Observe func(store.Run, plan.Outcome)
}

// Parts returns the handlers and loops for service Options.
func (b Bot) Parts() ([]webhook.Handler, []func(context.Context)) {
	checks := &report.Checks{Store: b.Store}
	coord := &merge.Coordinator{
		Store: b.Store, Clients: b.Clients, Checks: checks, Owner: b.Owner,
		Log: b.Log.With("component", "merge"), Observe: b.Observe,
	}
	prev := &preview.Handler{Clients: b.Clients, Checks: checks, Log: b.Log.With("component", "preview")}
	return []webhook.Handler{coord, prev}, []func(context.Context){coord.Run}
}

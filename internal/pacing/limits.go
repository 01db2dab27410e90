// Package pacing keeps each GitHub App installation's content-generating
// requests (POST, PATCH, PUT, DELETE) under GitHub's secondary rate limits:
// at most 80 a minute and 500 an hour per installation, and 100 requests
// in flight. A secondary limit answers 403 and stalls everything behind it
// for a minute or more, deploys included, so shipbot never relies on
// hitting it: every write first takes a slot in its installation's
// windows, and waits when both windows would not admit it.
//
// Writes have two classes. What a rollout needs (the release, a workflow
// dispatch) may use the whole of each window; reporting (check runs,
// comments, deployments and their statuses, reactions) at most three
// quarters, so that reporting can never hold a trigger back.
//
// The windows are the installation's, not the process's: the slots are
// kept in a Ledger, the database that every replica shares.
package pacing

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits are the content-generating requests one installation may send
// per rolling minute and per rolling hour.
type Limits struct {
	PerMinute, PerHour int
}

// GitHubLimits are GitHub's secondary rate limits for an App installation,
// from "About secondary rate limits" in GitHub's REST API documentation.
// GitHub Enterprise Server administrators set their own.
var GitHubLimits = Limits{PerMinute: 80, PerHour: 500}

// String is the form ParseLimits reads.
func (l Limits) String() string { return fmt.Sprintf("%d/m,%d/h", l.PerMinute, l.PerHour) }

// ParseLimits reads SHIPBOT_GITHUB_WRITE_LIMITS: "80/m,500/h", either part
// alone ("40/m") keeping GitHub's value for the other, in either order.
func ParseLimits(s string) (Limits, error) {
	l := GitHubLimits
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		n, unit, ok := strings.Cut(strings.TrimSpace(part), "/")
		v, err := strconv.Atoi(strings.TrimSpace(n))
		unit = strings.TrimSpace(unit)
		if !ok || err != nil || v <= 0 || (unit != "m" && unit != "h") {
			return Limits{}, fmt.Errorf("write limits %q: want a positive number of writes per minute and per hour, like %q", s, GitHubLimits.String())
		}
		if seen[unit] {
			return Limits{}, fmt.Errorf("write limits %q: /%s given twice", s, unit)
		}
		seen[unit] = true
		if unit == "m" {
			l.PerMinute = v
		} else {
			l.PerHour = v
		}
	}
	if l.PerMinute > l.PerHour {
		return Limits{}, fmt.Errorf("write limits %q: %d a minute is more than the %d an hour allows", s, l.PerMinute, l.PerHour)
	}
	return l, nil
}

// Class says which share of an installation's windows a write may use.
type Class int

const (
	// Rollout is a write a rollout waits on: the release, a workflow
	// dispatch. It may use all of each window.
	Rollout Class = iota
	// Report is a write that shows the work on GitHub. It may use three
	// quarters of each window, leaving the rest to rollouts.
	Report
)

func (c Class) String() string {
	if c == Rollout {
		return "rollout"
	}
	return "report"
}

// For is the part of l that writes of class c may fill.
func (l Limits) For(c Class) Limits {
	if c == Rollout {
		return l
	}
	return Limits{PerMinute: max(l.PerMinute*3/4, 1), PerHour: max(l.PerHour*3/4, 1)}
}

// Margin is how much longer than GitHub's window a write is counted in
// it: GitHub receives a write a little after its slot was taken (network,
// a retry's first attempt), and replicas' clocks differ a little. Two
// seconds is a fraction of a minute's window and covers both.
const Margin = 2 * time.Second

// Window is one of Limits' rolling windows: at most Limit writes in any
// Span (GitHub's window and Margin).
type Window struct {
	Span  time.Duration
	Limit int
}

// Windows are l's two windows.
func (l Limits) Windows() [2]Window {
	return [2]Window{{time.Minute + Margin, l.PerMinute}, {time.Hour + Margin, l.PerHour}}
}

// From is where w's window ending at now begins (exclusive).
func (w Window) From(now time.Time) time.Time { return now.Add(-w.Span) }

// Wait is how long until w admits one more write at now, given the
// Limit-th newest write in (From(now), now] (full false when the window
// holds fewer than Limit): 0 when one fits now. Only that write matters,
// so a store reads one row per window rather than the hour's every write.
func (w Window) Wait(nth time.Time, full bool, now time.Time) time.Duration {
	if !full {
		return 0
	}
	return nth.Add(w.Span).Sub(now)
}

// Wait is how long until a write within lim fits the windows that end at
// now, given the times of the installation's writes taken before (any
// order; those outside the windows are ignored): 0 when it fits now. It is
// Window.Wait over a list, as stores decide over their rows.
func Wait(taken []time.Time, now time.Time, lim Limits) time.Duration {
	var wait time.Duration
	for _, w := range lim.Windows() {
		from := w.From(now)
		var in []time.Time
		for _, t := range taken {
			if t.After(from) && !t.After(now) {
				in = append(in, t)
			}
		}
		full := len(in) >= w.Limit
		var nth time.Time
		if full {
			slices.SortFunc(in, func(a, b time.Time) int { return b.Compare(a) })
			nth = in[w.Limit-1]
		}
		wait = max(wait, w.Wait(nth, full, now))
	}
	return wait
}

package report_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/shipbot/shipbot/internal/gate"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/release"
	"github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// Text from outside, as issue 10 found it reaching the PR raw.
const (
	hostileTitle    = "fix: x <!-- hidden ![p](https://evil.example/p.png) @acme/security-team"
	hostileCallback = "https://ci.example/x) ![p](https://evil.example/p.png"
	hostileBody     = "404 Not Found: <!-- tracking --> | col | col |\n| --- | --- |\n<img src=https://evil.example/p.png>"
	hostileFreeze   = "@acme/security-team <img src=x>"
)

// dangers lists what GitHub would act on in md that shipbot did not write
// on purpose: an HTML comment or tag, an image, a link to the attacker's
// host, a mention of the team.
func dangers(md string) []string {
	// The callback's own link is checked on its own; the attacker's URL
	// inside its encoded path is not a link.
	md = regexp.MustCompile(`\]\(https://ci\.example/[^)\s]*\)`).ReplaceAllString(md, "]()")
	var found []string
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(^|[^\\])<!--`),
		regexp.MustCompile(`(^|[^\\])<[a-zA-Z/]`),
		regexp.MustCompile(`!\[`),
		regexp.MustCompile(`\]\(https?://evil`),
		regexp.MustCompile(`https?://evil`),
		regexp.MustCompile(`@acme`),
	} {
		if m := re.FindString(md); m != "" {
			found = append(found, m)
		}
	}
	return found
}

// readable is md as a reader sees it: escapes undone, zero-width spaces
// invisible.
func readable(md string) string {
	md = regexp.MustCompile(`\\([!-/:-@\[-`+"`"+`{-~])|&lt;|&gt;|\x{200b}`).ReplaceAllStringFunc(md, func(m string) string {
		switch m {
		case "&lt;":
			return "<"
		case "&gt;":
			return ">"
		case "\u200b":
			return ""
		}
		return m[1:]
	})
	return md
}

// cells counts the cells of each table row in md (pipes without a
// backslash before them, less one).
func cells(md string) []int {
	var out []int
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "|") {
			out = append(out, len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(l, -1))-1)
		}
	}
	return out
}

func checkHostile(t *testing.T, what, md string, columns int, reads ...string) {
	t.Helper()
	if d := dangers(md); len(d) > 0 {
		t.Errorf("%s: %q survived:\n%s", what, d, md)
	}
	for _, n := range cells(md) {
		if n != columns {
			t.Errorf("%s: a table row has %d cells, want %d:\n%s", what, n, columns, md)
			break
		}
	}
	for _, r := range reads {
		if !strings.Contains(readable(md), r) {
			t.Errorf("%s: does not read %q:\n%s", what, r, md)
		}
	}
}

// A PR title, a callback's url, a target's error body, a freeze reason and
// a reviewer's login reach the check runs and the sticky comment escaped:
// nothing hidden, no image, no link the sender chose, no mention, the table
// intact, and every word still there to read.
func TestOutsideTextIsEscaped(t *testing.T) {
	choice, err := release.ChooseBump(nil, hostileTitle, "", "")
	if err != nil {
		t.Fatal(err)
	}
	released := plan.Outcome{
		Kind: plan.Release, Version: semver.MustParse("1.4.3"), Tag: "v1.4.3", Choice: choice,
		Stages: []plan.Stage{{Name: "qa", Target: "spin-qa", SkipLabel: "no-deploy-to-qa"}},
		Gate:   gate.Decision{Notes: []string{"@acme/security-team's own approval does not count"}},
	}
	refused := plan.Outcome{Kind: plan.Refused, Gate: gate.Decision{
		Reasons: []string{"@acme/security-team requested changes", `required check "<!-- ci" failed on abc1234`},
	}}
	invalid := plan.Outcome{Kind: plan.Invalid, Problems: []string{".github/shipbot.yml:3:9: stage `qa` <!-- x"}}
	title := `fix: x <!-- hidden ![p](https://evil.example/p.png) @acme/security-team`
	for name, md := range map[string]string{
		"shipbot/preview":         report.PreviewOutcome(released).Summary,
		"shipbot/rollout, merged": report.MergeOutcome(released, "https://github.com/acme/api/releases/tag/v1.4.3").Summary,
	} {
		checkHostile(t, name, md, 3, title, "@acme/security-team's own approval does not count")
	}
	checkHostile(t, "sticky comment, merged", report.MergeComment(released, "https://github.com/acme/api/releases/tag/v1.4.3"), 3, title)
	for name, md := range map[string]string{
		"shipbot/preview, refused":  report.PreviewOutcome(refused).Summary,
		"shipbot/rollout, refused":  report.MergeOutcome(refused, "").Summary,
		"sticky comment, refused":   report.MergeComment(refused, ""),
		"shipbot/rollout, invalid":  report.MergeOutcome(invalid, "").Summary,
		"sticky comment, invalid":   report.MergeComment(invalid, ""),
		"shipbot/preview, invalid ": report.PreviewOutcome(invalid).Summary,
	} {
		checkHostile(t, name, md, 0)
	}
	checkHostile(t, "refusal", report.MergeComment(refused, ""), 0, "@acme/security-team requested changes", `required check "<!-- ci" failed`)
	checkHostile(t, "problem", report.MergeComment(invalid, ""), 0, "stage `qa` <!-- x")

	now := time.Now()
	rr := store.RolloutRun{
		Run: store.Run{ID: "run-1", Repo: "acme/api", Tag: "v1.4.3", ReleaseURL: "https://github.com/acme/api/releases/tag/v1.4.3"},
		ID:  "run-1", Tag: "v1.4.3", ReleaseURL: "https://github.com/acme/api/releases/tag/v1.4.3",
		Stages: []store.StageRow{
			{Index: 0, Name: "qa", State: schedule.Passed},
			{Index: 1, Name: "staging", State: schedule.Failed},
			{Index: 2, Name: "prod", State: schedule.Pending, Wait: rollout.Wait{Kind: schedule.Frozen, Reason: hostileFreeze}},
		},
	}
	execs := []store.Execution{
		{ID: "e1", Stage: 0, StageName: "qa", Tag: "v1.4.3", Phase: store.PhaseFinished, Outcome: "succeeded",
			URL: hostileCallback, CreatedAt: now, FinishedAt: now},
		{ID: "e2", Stage: 1, StageName: "staging", Tag: "v1.4.3", Phase: store.PhaseFinished, Outcome: "failed",
			Reason: "trigger stage staging via hook: " + hostileBody, URL: "javascript:alert(1)", CreatedAt: now, FinishedAt: now},
	}
	for name, md := range map[string]string{
		"shipbot/rollout": report.RolloutProgress(rr, execs).Summary,
		"sticky comment":  report.RolloutComment(rr, execs),
	} {
		checkHostile(t, name, md, 6,
			"404 Not Found: <!-- tracking --> | col | col | | --- | --- | <img src=https://evil.example/p.png>",
			"waiting: pipeline frozen (@acme/security-team <img src=x>)")
		// The callback's link goes where it said, its url encoded so that
		// it cannot close the link; a javascript: url is no link at all.
		if want := "[execution](https://ci.example/x%29%20%21%5Bp%5D%28https://evil.example/p.png)"; !strings.Contains(md, want) {
			t.Errorf("%s: lacks the encoded link %s:\n%s", name, want, md)
		}
		if strings.Contains(md, "javascript") {
			t.Errorf("%s: links javascript:\n%s", name, md)
		}
	}
}

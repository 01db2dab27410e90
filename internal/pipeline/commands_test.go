package pipeline_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// command has user comment body on the merged PR and waits until the bot
// answered (its reply mentions the user); it returns the reply.
func (e *env) command(pr int, user, body string) githubtest.Comment {
	e.t.Helper()
	id := e.gh.AddComment(repo, pr, user, body)
	e.waitDelivery(e.deliver("issue_comment", e.gh.IssueCommentEvent(owner, name, pr, id, "created")))
	for _, c := range e.gh.Comments(repo, pr) {
		if c.ID == id {
			if n := len(c.Reactions); n == 0 || c.Reactions[0] != "eyes" {
				e.t.Errorf("reactions on %q: %v; want eyes first", body, c.Reactions)
			}
		}
	}
	var reply githubtest.Comment
	eventually(e.t, "the bot answers "+body, func() bool {
		for _, c := range e.gh.Comments(repo, pr) {
			if c.ID > id && strings.HasPrefix(c.Body, "@"+user) && strings.Contains(c.Body, body) {
				reply = c
				return true
			}
		}
		return false
	})
	return reply
}

func reactionsOf(e *env, pr int, body string) []string {
	for _, c := range e.gh.Comments(repo, pr) {
		if c.Body == body {
			return c.Reactions
		}
	}
	return nil
}

// A stage a label skipped is deployed on a writer's command, in order;
// a reader's command changes nothing.
func TestCommandDeploysASkippedStage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded")})
	e.gh.SetPermission(repo, "carol", "write")
	e.gh.SetPermission(repo, "dave", "read")
	m := e.merge("fix: careful change", "no-deploy-to-prod")
	rr := e.released(m)
	e.waitDone(rr.ID)
	if n := len(e.spin.received("api-prod")); n != 0 {
		t.Fatalf("prod triggered %d times despite the label", n)
	}

	reply := e.command(m.pr, "dave", "/shipbot deploy prod")
	if !strings.Contains(reply.Body, "write") || !slices.Contains(reactionsOf(e, m.pr, "/shipbot deploy prod"), "-1") {
		t.Errorf("reader's command answered %q; want a refusal naming write permission and a -1", reply.Body)
	}
	// The answer comes after the command was carried out (or not).
	if got := e.stage(rr.ID, "prod").State; got != schedule.Skipped || len(e.spin.received("api-prod")) != 0 {
		t.Fatalf("a reader's command changed prod: %s", got)
	}

	reply = e.command(m.pr, "carol", "/shipbot deploy  prod")
	if !strings.Contains(reply.Body, "will deploy to prod") {
		t.Errorf("writer's command answered %q", reply.Body)
	}
	done := e.waitStage(rr.ID, "prod", "passed")
	if done.DeployBy != "carol" {
		t.Errorf("prod deploy_by %q; want carol on record", done.DeployBy)
	}
	if trs := e.spin.received("api-prod"); len(trs) != 1 || trs[0].str("version") != "0.1.0" {
		t.Fatalf("prod triggers %+v; want one of 0.1.0", trs)
	}
	e.waitDone(rr.ID)
	e.waitCheckText(m.sha, "| prod | v0.1.0 | succeeded |")
	// On the audit log: prod skipped by its label, dave's command refused,
	// carol's carried out, then prod's deploy.
	evs, err := e.st.ListEvents(context.Background(), store.EventQuery{Run: rr.ID})
	if err != nil {
		t.Fatal(err)
	}
	var prod []string
	for i := len(evs) - 1; i >= 0; i-- {
		if ev := evs[i]; ev.Stage == "prod" {
			prod = append(prod, ev.Kind+" "+ev.Actor+" "+ev.Detail)
		}
	}
	if want := []string{
		"stage.skipped  label no-deploy-to-prod",
		"command.deploy dave /shipbot deploy prod (refused: Sorry, `deploy` needs write permission on this repository (write, maintain or admin); your role here is read.)",
		"command.deploy carol /shipbot deploy prod (label no-deploy-to-prod skipped it)",
		"stage.entered  v0.1.0",
	}; len(prod) < 5 || !slices.Equal(prod[:4], want) || !strings.HasPrefix(prod[len(prod)-1], "stage.passed") {
		t.Errorf("prod's events:\n%s\nwant them to start with\n%s\nand end with stage.passed", strings.Join(prod, "\n"), strings.Join(want, "\n"))
	}
	deps := 0
	for _, d := range e.gh.Deployments(repo) {
		if d.Environment == "prod" && d.Statuses[len(d.Statuses)-1].State == "success" {
			deps++
		}
	}
	if deps != 1 {
		t.Errorf("%d successful prod deployments; want 1", deps)
	}
}

// An older version cannot be deployed to a stage a newer one reached:
// versions only go up in a stage.
func TestCommandKeepsVersionsGoingUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded")})
	e.gh.SetPermission(repo, "carol", "write")
	old := e.merge("fix: one", "no-deploy-to-prod")
	e.waitDone(e.released(old).ID)
	newer := e.merge("fix: two")
	e.waitDone(e.released(newer).ID)
	reply := e.command(old.pr, "carol", "/shipbot deploy prod")
	if !strings.Contains(reply.Body, "v0.1.1 has since been deployed to prod") {
		t.Errorf("answered %q; want a refusal naming the newer version", reply.Body)
	}
	if got := e.stage(e.released(old).ID, "prod").State; got != schedule.Skipped {
		t.Errorf("old version's prod is %s; want still skipped", got)
	}
	if n := len(e.spin.received("api-prod")); n != 1 {
		t.Errorf("prod triggered %d times; want only the newer version's", n)
	}
}

// A failed stage is retried as a new attempt; a deployed one is rolled
// back to the version before it.
func TestCommandRetryAndRollback(t *testing.T) {
	t.Parallel()
	fail := true
	e := newEnv(t, options{decide: func(tr trigger) string {
		if tr.str("stage") == "prod" && tr.str("version") == "0.1.1" && fail {
			return "failed"
		}
		return "succeeded"
	}})
	e.gh.SetPermission(repo, "carol", "write")
	first := e.merge("fix: one")
	e.waitDone(e.released(first).ID)
	m := e.merge("fix: two")
	rr := e.released(m)
	e.waitDone(rr.ID)
	if got := e.stage(rr.ID, "prod").State; got != schedule.Failed {
		t.Fatalf("prod %s; want failed", got)
	}
	fail = false
	reply := e.command(m.pr, "carol", "/shipbot retry prod")
	if !strings.Contains(reply.Body, "Retrying v0.1.1 in prod") {
		t.Errorf("retry answered %q", reply.Body)
	}
	e.waitStage(rr.ID, "prod", "passed")
	if xs := e.executionsAt(rr.ID, "prod"); len(xs) != 2 || xs[1].Attempt != 2 || xs[1].Outcome != "succeeded" {
		t.Fatalf("prod executions %+v; want attempt 2 succeeded", xs)
	}
	e.waitDone(rr.ID)
	cr := e.waitCheck(m.sha)
	if cr.Conclusion != "success" {
		t.Errorf("rollout check %s after the retry; want success", cr.Conclusion)
	}

	reply = e.command(m.pr, "carol", "/shipbot rollback prod")
	if !strings.Contains(reply.Body, "Rolling prod back from v0.1.1 to v0.1.0") {
		t.Errorf("rollback answered %q", reply.Body)
	}
	e.waitStage(rr.ID, "prod", "rolled-back")
	trs := e.spin.received("api-prod")
	if last := trs[len(trs)-1]; !last.rollback() || last.str("version") != "0.1.0" {
		t.Errorf("last prod trigger %+v; want a rollback to 0.1.0", last.Payload)
	}
	// Rolled back: nothing of it is deployed to roll back again.
	reply = e.command(m.pr, "carol", "/shipbot rollback prod")
	if !strings.Contains(reply.Body, "only a deployed version is rolled back") {
		t.Errorf("second rollback answered %q", reply.Body)
	}
}

// --force passes a closed window for an admin only, and is on record.
func TestCommandForceIsForAdmins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{
		config: repoConfig(prodWindowed),
		decide: always("succeeded"),
		start:  func(c *clock) { c.set(monday9) },
	})
	e.gh.SetPermission(repo, "carol", "write")
	e.gh.SetPermission(repo, "erin", "admin")
	m := e.merge("fix: urgent")
	rr := e.released(m)
	e.waitWait(rr.ID, "prod", "waiting for the deploy window, opens Mon 2030-01-07 10:00 UTC")

	reply := e.command(m.pr, "carol", "/shipbot deploy prod --force")
	if !strings.Contains(reply.Body, "admin") {
		t.Errorf("a writer's --force answered %q; want refused, admins only", reply.Body)
	}
	e.idle(10)
	if n := len(e.spin.received("api-prod")); n != 0 {
		t.Fatalf("prod triggered %d times on a writer's --force", n)
	}
	reply = e.command(m.pr, "erin", "/shipbot deploy prod --force")
	if !strings.Contains(reply.Body, "Forced") {
		t.Errorf("an admin's --force answered %q", reply.Body)
	}
	row := e.waitStage(rr.ID, "prod", "passed")
	if row.ForceBy != "erin" {
		t.Errorf("force_by %q; want erin on record", row.ForceBy)
	}
	if i := e.obs.index(rr.ID, "prod", "forced"); i < 0 {
		t.Errorf("no forced event; events: %v", e.obs.all())
	}
}

// Freeze needs maintain; status answers anyone; unknown commands get help.
func TestCommandFreezeStatusAndHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded")})
	e.gh.SetPermission(repo, "carol", "write")
	e.gh.SetPermission(repo, "mia", "maintain")
	m := e.merge("fix: one")
	rr := e.released(m)
	e.waitDone(rr.ID)

	if reply := e.command(m.pr, "carol", "/shipbot freeze lunch"); !strings.Contains(reply.Body, "maintain") {
		t.Errorf("writer's freeze answered %q; want refused, maintain needed", reply.Body)
	}
	if reply := e.command(m.pr, "mia", "/shipbot freeze incident 7"); !strings.Contains(reply.Body, "Froze pipeline") {
		t.Errorf("maintainer's freeze answered %q", reply.Body)
	}
	next := e.merge("fix: two")
	nr := e.released(next)
	e.waitWait(nr.ID, "qa", "waiting: pipeline frozen (incident 7)")
	if reply := e.command(next.pr, "dave", "/shipbot status"); !strings.Contains(reply.Body, "qa: pending (waiting: pipeline frozen (incident 7))") {
		t.Errorf("status answered %q", reply.Body)
	}
	if reply := e.command(m.pr, "mia", "/shipbot unfreeze"); !strings.Contains(reply.Body, "Unfroze") {
		t.Errorf("unfreeze answered %q", reply.Body)
	}
	e.waitDone(nr.ID)
	if reply := e.command(m.pr, "carol", "/shipbot frobnicate"); !strings.Contains(reply.Body, "/shipbot retry") {
		t.Errorf("unknown command answered %q; want the help", reply.Body)
	}
}

// A freeze reason is outside text: the sticky comment, the rollout check
// run, the status reply and a refusal that quotes the wait show it
// escaped (no mention of the team, no image), still readable.
func TestFreezeReasonIsEscapedEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded")})
	e.gh.SetPermission(repo, "carol", "write")
	const reason = "@acme/security-team <img src=x>"
	if err := e.st.Freeze(context.Background(), "acme/api:api", reason, "mia"); err != nil {
		t.Fatal(err)
	}
	m := e.merge("fix: one")
	rr := e.released(m)
	e.waitWait(rr.ID, "qa", "waiting: pipeline frozen ("+reason+")")
	const shown = "waiting: pipeline frozen (@\u200bacme/security-team &lt;img src=x&gt;)"
	bodies := map[string]string{
		"sticky comment": e.waitComment(m.pr, "pipeline frozen").Body,
		"rollout check":  e.waitCheckText(m.sha, "pipeline frozen").Summary,
		"status reply":   e.command(m.pr, "dave", "/shipbot status").Body,
		"deploy refusal": e.command(m.pr, "carol", "/shipbot deploy qa").Body,
	}
	for what, b := range bodies {
		if strings.Contains(b, "@acme") || strings.Contains(b, "<img") {
			t.Errorf("%s mentions the team or loads an image:\n%s", what, b)
		}
		if !strings.Contains(b, shown) {
			t.Errorf("%s does not show the reason as %q:\n%s", what, shown, b)
		}
	}
}

// /shipbot rollback <stage> to <version> restores any version the stage
// ran before, not only the previous one, with the same checks; the
// command and the rollback are on the audit log, and the stage's history
// shows the version back.
func TestCommandRollbackToANamedVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: func(trigger) string { return "succeeded" }})
	e.gh.SetPermission(repo, "carol", "write")
	e.gh.SetPermission(repo, "tom", "read")
	var last merged
	for _, title := range []string{"fix: one", "fix: two", "fix: three"} {
		last = e.merge(title)
		e.waitDone(e.released(last).ID)
	}
	rr := e.released(last) // v0.1.2

	reply := e.command(last.pr, "tom", "/shipbot rollback prod to v0.1.0")
	if !strings.Contains(reply.Body, "write") {
		t.Errorf("a reader's rollback answered %q; want it refused for want of write permission", reply.Body)
	}
	reply = e.command(last.pr, "carol", "/shipbot rollback prod to v9.9.9")
	if !strings.Contains(reply.Body, "prod did not run v9.9.9 before v0.1.2; it ran v0.1.1, v0.1.0.") {
		t.Errorf("rollback to a version prod never ran answered %q", reply.Body)
	}
	if got := e.stage(rr.ID, "prod").State; got != schedule.Passed {
		t.Fatalf("prod %s after refused rollbacks; want passed, untouched", got)
	}

	reply = e.command(last.pr, "carol", "/shipbot rollback prod to 0.1.0")
	if !strings.Contains(reply.Body, "Rolling prod back from v0.1.2 to v0.1.0") {
		t.Errorf("rollback to v0.1.0 answered %q", reply.Body)
	}
	e.waitStage(rr.ID, "prod", "rolled-back")
	trs := e.spin.received("api-prod")
	if tr := trs[len(trs)-1]; !tr.rollback() || tr.str("version") != "0.1.0" {
		t.Errorf("last prod trigger %+v; want a rollback to 0.1.0, past 0.1.1", tr.Payload)
	}

	evs, err := e.st.ListEvents(context.Background(), store.EventQuery{Run: rr.ID})
	if err != nil {
		t.Fatal(err)
	}
	var kinds, commands []string
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		kinds = append(kinds, ev.Kind)
		if ev.Kind == "command.rollback" && ev.Stage == "prod" {
			commands = append(commands, ev.Actor+" "+ev.Detail)
		}
	}
	// Every command is on record, the refused ones with why.
	if want := []string{
		"tom /shipbot rollback prod to v0.1.0 (refused: Sorry, `rollback` needs write permission on this repository (write, maintain or admin); your role here is read.)",
		"carol /shipbot rollback prod to v9.9.9 (refused: prod did not run v9.9.9 before v0.1.2; it ran v0.1.1, v0.1.0.)",
		"carol /shipbot rollback prod to 0.1.0 (from v0.1.2 to v0.1.0)",
	}; !slices.Equal(commands, want) {
		t.Errorf("rollback commands on record:\n%s\nwant\n%s", strings.Join(commands, "\n"), strings.Join(want, "\n"))
	}
	tail := strings.Join(kinds[len(kinds)-4:], " ")
	if tail != "command.rollback stage.rolling_back stage.triggered stage.rolled_back" {
		t.Errorf("the run's last events: %s; want the command, then the rollback's course", tail)
	}
	hist, err := e.st.History(context.Background(), rr.PipelineKey, []string{"qa", "prod"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if h := hist["prod"]; len(h) != 4 || h[0].Tag != "v0.1.0" || !h[0].Rollback || h[0].From != "v0.1.2" || h[1].Tag != "v0.1.2" {
		t.Errorf("prod's history %+v; want v0.1.0 back (rolled back from v0.1.2) before v0.1.2, v0.1.1, v0.1.0", h)
	}
}

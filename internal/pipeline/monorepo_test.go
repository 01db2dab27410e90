package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

// monoConfig is a repository of two services, api (qa → prod) and web
// (qa → prod), each deployed by its own pipeline.
const monoConfig = `version: 1
gate:
  approvals: 1
pipelines:
  - name: api
    paths: ["services/api/**", "libs/**"]
    ignore: ["**/*.md"]
    stages:
      - {name: qa, target: spinnaker-qa}
      - {name: prod, target: spinnaker-prod}
  - name: web
    paths: ["services/web/**", "libs/**"]
    ignore: ["**/*.md"]
    stages:
      - {name: qa, target: spinnaker-qa}
      - {name: prod, target: spinnaker-prod}
`

// monoConstraints accept either pipeline's triggers at the shared sources.
func monoConstraints() map[string]map[string]string {
	c := defaultConstraints()
	delete(c["api-qa"], "stage")
	return c
}

// rolloutsOf waits until the merge is released and returns its rollouts
// by pipeline.
func (e *env) rolloutsOf(m merged, want ...string) map[string]store.RolloutRun {
	e.t.Helper()
	out := map[string]store.RolloutRun{}
	eventually(e.t, "the merge "+m.sha[:7]+" is released into "+strings.Join(want, ", "), func() bool {
		r, err := e.st.RunBySHA(context.Background(), repo, m.sha)
		if err != nil || r.Open() {
			return false
		}
		if r.State != store.RunReleased {
			e.t.Fatalf("merge %s ended %s, not released: %s", m.sha[:7], r.State, r.Summary)
		}
		rrs, err := e.st.RolloutsOf(context.Background(), r.ID)
		if err != nil || len(rrs) != len(want) {
			return false
		}
		for _, rr := range rrs {
			out[rr.Pipeline] = rr
		}
		return true
	})
	for _, p := range want {
		if _, ok := out[p]; !ok {
			e.t.Fatalf("rollouts %v; want %v", out, want)
		}
	}
	return out
}

// checkNamed is the completed check run called name on sha.
func (e *env) checkNamed(sha, name string) githubtest.CheckRun {
	e.t.Helper()
	var cr githubtest.CheckRun
	eventually(e.t, name+" on "+sha[:7]+" completes", func() bool {
		var ok bool
		cr, ok = e.gh.CheckRun(repo, sha, name)
		return ok && cr.Status == "completed"
	})
	return cr
}

// waitCommentTable waits until the sticky comment's section of pipeline p
// says want.
func (e *env) waitCommentTable(pr int, p, want string) {
	e.t.Helper()
	eventually(e.t, fmt.Sprintf("the sticky comment on #%d says %q for %s", pr, want, p), func() bool {
		cs := e.stickyComments(pr)
		if len(cs) == 0 {
			return false
		}
		_, section, ok := strings.Cut(cs[len(cs)-1].Body, "#### "+p+"\n")
		section, _, _ = strings.Cut(section, "#### ")
		return ok && strings.Contains(section, want)
	})
}

func tagNames(gh *githubtest.Server) []string {
	var out []string
	for _, t := range gh.Tags(repo) {
		out = append(out, t.Name)
	}
	slices.Sort(out)
	return out
}

// A pull request touching one service releases and deploys only its
// pipeline, with its own tag, check run and environments.
func TestMonorepoOneServiceOnlyItsPipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: always("succeeded")})
	m := e.mergeFiles("feat: search", map[string]string{"services/api/search.go": "package api\n"})
	api := e.rolloutsOf(m, "api")["api"]
	done := e.waitDone(api.ID)
	if done.Tag != "api/v0.1.0" || stageOf(done, "prod").State != schedule.Passed {
		t.Fatalf("api rollout %s prod %s; want api/v0.1.0 deployed", done.Tag, stageOf(done, "prod").State)
	}
	if got := tagNames(e.gh); !slices.Equal(got, []string{"api/v0.1.0"}) {
		t.Errorf("tags %v; want api/v0.1.0 only", got)
	}
	for _, tr := range e.spin.received("") {
		if tr.str("pipeline") != "api" || tr.str("tag") != "api/v0.1.0" {
			t.Errorf("trigger %s pipeline %q tag %q; want api's", tr.Source, tr.str("pipeline"), tr.str("tag"))
		}
	}
	if cr := e.checkNamed(m.sha, "shipbot/rollout: api"); cr.Conclusion != "success" {
		t.Errorf("shipbot/rollout: api %s %q", cr.Conclusion, cr.Title)
	}
	if _, ok := e.gh.CheckRun(repo, m.sha, "shipbot/rollout: web"); ok {
		t.Error("web has a rollout check run; the merge did not touch it")
	}
	var envs []string
	for _, d := range e.gh.Deployments(repo) {
		envs = append(envs, d.Environment)
	}
	slices.Sort(envs)
	if want := []string{"api/prod", "api/qa"}; !slices.Equal(envs, want) {
		t.Errorf("deployment environments %v; want %v", envs, want)
	}
}

// A pull request touching both services releases both independently; a
// failure in web's prod leaves api deploying; one comment with a section
// per pipeline.
func TestMonorepoTwoPipelinesIndependent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: func(tr trigger) string {
		if tr.str("pipeline") == "web" && tr.str("stage") == "prod" {
			return "failed"
		}
		return "succeeded"
	}})
	m := e.mergeFiles("feat: shared lib", map[string]string{"libs/log.go": "package libs\n"})
	rs := e.rolloutsOf(m, "api", "web")
	api, web := e.waitDone(rs["api"].ID), e.waitDone(rs["web"].ID)
	if api.Tag != "api/v0.1.0" || web.Tag != "web/v0.1.0" {
		t.Errorf("tags %s, %s; want each pipeline's own first version", api.Tag, web.Tag)
	}
	if got := stageOf(api, "prod").State; got != schedule.Passed {
		t.Errorf("api prod %s; want passed although web failed", got)
	}
	if got := stageOf(web, "prod").State; got != schedule.Failed {
		t.Errorf("web prod %s; want failed", got)
	}
	// Each pipeline its own GitHub Release on the merge commit, whose
	// notes name the PR.
	rels := map[string]githubtest.Release{}
	for _, rl := range e.gh.Releases(repo) {
		rels[rl.TagName] = rl
	}
	for _, tag := range []string{"api/v0.1.0", "web/v0.1.0"} {
		rl, ok := rels[tag]
		if !ok || rl.TargetCommitish != m.sha || !strings.Contains(rl.Body, fmt.Sprintf("[#%d]", m.pr)) || !strings.Contains(rl.Body, "feat: shared lib") {
			t.Errorf("release %s (found %v) on %s:\n%s\nwant one on the merge commit whose notes name the PR", tag, ok, rl.TargetCommitish, rl.Body)
		}
	}
	if len(rels) != 2 {
		t.Errorf("%d releases; want one per pipeline", len(rels))
	}
	if cr := e.checkNamed(m.sha, "shipbot/rollout: api"); cr.Conclusion != "success" {
		t.Errorf("api check %s", cr.Conclusion)
	}
	if cr := e.checkNamed(m.sha, "shipbot/rollout: web"); cr.Conclusion != "failure" {
		t.Errorf("web check %s", cr.Conclusion)
	}
	c := e.waitComment(m.pr, "#### web")
	if !strings.Contains(c.Body, "#### api") || strings.Count(c.Body, "Released **") != 2 {
		t.Errorf("sticky comment:\n%s\nwant a section per pipeline", c.Body)
	}
	if n := len(e.stickyComments(m.pr)); n != 1 {
		t.Errorf("%d sticky comments; want one", n)
	}
	// The API lists the merge's pipelines apart, each with its release.
	code, body := e.post("GET", "/api/v1/runs", "", "")
	if code != 200 || !strings.Contains(body, `"pipeline":"api"`) || !strings.Contains(body, `"pipeline":"web"`) ||
		!strings.Contains(body, `"tag":"web/v0.1.0"`) {
		t.Errorf("GET /api/v1/runs = %d %s; want both pipelines' rollouts", code, body)
	}
	// The environments API and view list the repository's pipelines apart,
	// each with what it runs where.
	code, body = e.post("GET", "/api/v1/pipelines", "", "")
	var got struct {
		Pipelines []struct {
			Name, Repository, Pipeline string
			Stages                     []struct {
				Name string
				Live *struct{ Tag string }
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("GET /api/v1/pipelines = %d %s (%v)", code, body, err)
	}
	live := map[string]string{}
	for _, p := range got.Pipelines {
		if p.Repository != repo || p.Name != repo+":"+p.Pipeline {
			t.Errorf("pipeline %+v; want one of %s named %s:<pipeline>", p, repo, repo)
		}
		for _, st := range p.Stages {
			if st.Live != nil {
				live[p.Pipeline+"/"+st.Name] = st.Live.Tag
			}
		}
	}
	if want := map[string]string{"api/qa": "api/v0.1.0", "api/prod": "api/v0.1.0", "web/qa": "web/v0.1.0"}; !maps.Equal(live, want) {
		t.Errorf("live versions by pipeline and stage %v; want %v", live, want)
	}
	if code, page := e.post("GET", "/", "", ""); code != 200 ||
		!strings.Contains(page, `data-pipeline="acme/api:api"`) || !strings.Contains(page, `data-pipeline="acme/api:web"`) {
		t.Errorf("the dashboard (%d) does not show acme/api's pipelines apart", code)
	}
}

// monoConfigOf is a repository of k services (api, web, worker, …), each
// its own two-stage pipeline (qa → prod) started by its own directory.
func monoConfigOf(k int) string {
	var b strings.Builder
	b.WriteString("version: 1\ngate:\n  approvals: 1\npipelines:\n")
	for _, p := range monoServices[:k] {
		fmt.Fprintf(&b, `  - name: %[1]s
    paths: ["services/%[1]s/**"]
    stages:
      - {name: qa, target: spinnaker-qa}
      - {name: prod, target: spinnaker-prod}
`, p)
	}
	return b.String()
}

var monoServices = []string{"api", "web", "worker"}

// A pipeline whose release GitHub refuses holds up only its own rollout: a
// ruleset restricting the creation of api's tags (the first pipeline)
// refuses its release, and web's release is still cut and rolled out to
// prod. Once the rule is lifted, the merge's next evaluation cuts api's
// release alone (web's is reused, its rollout not started again) and api
// rolls out.
func TestMonorepoRefusedReleaseHoldsUpOnlyItsPipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: always("succeeded"), prepare: retryRefusedAtOnce})
	refusals := e.refuseReleases("api/", http.StatusUnprocessableEntity, `{"message":"Repository rule violations found\n\nCannot create ref due to creations being restricted.\n\n","documentation_url":"https://docs.github.com/rest/repos/rules#get-rules-for-a-branch","status":"422"}`)
	m := e.mergeFiles("feat: both", map[string]string{"services/api/a.go": "package api\n", "services/web/a.go": "package web\n"})

	var web store.RolloutRun
	eventually(t, "web's rollout starts while api's release is refused", func() bool {
		run, err := e.st.RunBySHA(context.Background(), repo, m.sha)
		if err != nil {
			return false
		}
		rrs, err := e.st.RolloutsOf(context.Background(), run.ID)
		if err != nil || len(rrs) == 0 {
			return false
		}
		if len(rrs) != 1 || rrs[0].Pipeline != "web" {
			t.Fatalf("rollouts %+v while api's release is refused; want web's alone", rrs)
		}
		web = rrs[0]
		return true
	})
	web = e.waitDone(web.ID)
	if web.Tag != "web/v0.1.0" || stageOf(web, "prod").State != schedule.Passed {
		t.Errorf("web %s %s; want web/v0.1.0 deployed to prod while api's release is refused", web.Tag, e.snapshot(web.ID))
	}
	if cr := e.checkNamed(m.sha, "shipbot/rollout: web"); cr.Conclusion != "success" {
		t.Errorf("web check %s", cr.Conclusion)
	}
	if refusals.Load() == 0 {
		t.Fatal("api's release was never refused")
	}
	if r, err := e.st.RunBySHA(context.Background(), repo, m.sha); err != nil || r.State != store.RunReleasing {
		t.Errorf("run %s (%v) while api's release is refused; want it still releasing, to be evaluated again", r.State, err)
	}
	// The pull request says which release waits, with GitHub's answer.
	e.waitCommentTable(m.pr, "api", "GitHub refused the release **api/v0.1.0**: 422 Repository rule violations found Cannot create ref due to creations being restricted.")
	e.waitCommentTable(m.pr, "web", "| prod | web/v0.1.0 | succeeded |")
	// GitHub's answer changes (the rule now names the tag pattern): the
	// next evaluation shows the new one, web's rollout long finished.
	e.refuseReleases("api/", http.StatusUnprocessableEntity, `{"message":"Repository rule violations found\n\nCannot create ref api/v0.1.0: tags matching api/* are restricted.\n\n","documentation_url":"https://docs.github.com/rest/repos/rules#get-rules-for-a-branch","status":"422"}`)
	eventually(t, "the next evaluation meets the new answer", func() bool {
		e.parts.Coordinator.Sweep(context.Background())
		cs := e.stickyComments(m.pr)
		return len(cs) == 1 && strings.Contains(cs[0].Body, "tags matching api/\\* are restricted")
	})

	e.refuseOnGitHub(nil, 0, "")
	e.parts.Coordinator.Sweep(context.Background()) // the next evaluation now, not at the next sweep
	rs := e.rolloutsOf(m, "api", "web")
	api := e.waitDone(rs["api"].ID)
	if api.Tag != "api/v0.1.0" || stageOf(api, "prod").State != schedule.Passed {
		t.Errorf("api %s %s; want api/v0.1.0 deployed once its release is allowed", api.Tag, e.snapshot(api.ID))
	}
	if rs["web"].ID != web.ID {
		t.Errorf("web's rollout %s after the retry; want %s, started once", rs["web"].ID, web.ID)
	}
	e.parts.Reporter.Wait()
	if got := tagNames(e.gh); !slices.Equal(got, []string{"api/v0.1.0", "web/v0.1.0"}) {
		t.Errorf("tags %v; want one per pipeline", got)
	}
	if n := len(e.gh.Releases(repo)); n != 2 {
		t.Errorf("%d releases; want one per pipeline", n)
	}
	for _, stage := range []string{"qa", "prod"} {
		for _, p := range []string{"api", "web"} {
			n := 0
			for _, tr := range e.spin.received("") {
				if tr.str("pipeline") == p && tr.str("stage") == stage {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s/%s triggered %d times; want once", p, stage, n)
			}
		}
	}
	if cr := e.checkNamed(m.sha, "shipbot/rollout: api"); cr.Conclusion != "success" {
		t.Errorf("api check %s", cr.Conclusion)
	}
	cs := e.stickyComments(m.pr)
	if len(cs) != 1 {
		t.Fatalf("%d sticky comments; want one", len(cs))
	}
	if body := cs[0].Body; strings.Contains(body, "refused") || strings.Count(body, "Released **") != 2 {
		t.Errorf("sticky comment once both are released:\n%s\nwant a section per pipeline's release and no refusal", body)
	}
}

// The design's bar: a merge that runs k two-stage pipelines costs at most
// 20 + 12·(k−1) GitHub calls, everything from its deliveries to the end of
// its rollouts included (the token fetch too). Every deploy lasts longer
// than the reporter gathers changes, so each stage's start and end is a
// change the PR shows live (as in the single form's bar, internal/service
// TestAPICallsPerMerge), and the count is the worst the reporter allows.
func TestMonorepoCallsPerMerge(t *testing.T) {
	t.Parallel()
	for k := 1; k <= len(monoServices); k++ {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{config: monoConfigOf(k), constraints: monoConstraints(), decide: always("succeeded")})
			e.spin.setDelay(300 * time.Millisecond)
			files := map[string]string{}
			for _, p := range monoServices[:k] {
				files["services/"+p+"/main.go"] = "package " + p + "\n"
			}
			m := e.mergeFiles("feat: every service", files)
			rs := e.rolloutsOf(m, monoServices[:k]...)
			for _, p := range monoServices[:k] {
				if done := e.waitDone(rs[p].ID); stageOf(done, "prod").State != schedule.Passed {
					t.Fatalf("%s: %s", p, e.snapshot(rs[p].ID))
				}
				e.waitCommentTable(m.pr, p, "| prod | "+p+"/v0.1.0 | succeeded |")
				if cr := e.checkNamed(m.sha, "shipbot/rollout: "+p); cr.Conclusion != "success" {
					t.Errorf("%s check %s", p, cr.Conclusion)
				}
			}
			e.parts.Reporter.Wait()
			reqs := e.gh.Requests()
			byPattern := map[string]int{}
			writes := 0
			for _, r := range reqs {
				byPattern[r.Method+" "+strings.TrimPrefix(r.Pattern, r.Method+" ")]++
				// Content-generating requests, as GitHub's secondary limits
				// count them (the token fetch is not one).
				if r.Method != "GET" && r.Pattern != "POST /app/installations/{installation_id}/access_tokens" {
					writes++
				}
			}
			var lines []string
			for _, p := range slices.Sorted(maps.Keys(byPattern)) {
				lines = append(lines, fmt.Sprintf("%3d  %s", byPattern[p], p))
			}
			bar := 20 + 12*(k-1)
			t.Logf("%d two-stage pipeline(s): %d GitHub calls (bar %d), %d content-generating\n%s", k, len(reqs), bar, writes, strings.Join(lines, "\n"))
			if len(reqs) > bar {
				t.Errorf("the merge of %d two-stage pipelines cost %d GitHub calls; the bar is %d", k, len(reqs), bar)
			}
			if n := byPattern["POST /repos/{owner}/{repo}/releases"]; n != k {
				t.Errorf("%d releases created; want %d, one per pipeline", n, k)
			}
		})
	}
}

// Files the pipelines ignore release nothing; the merge says so.
func TestMonorepoIgnoredFilesReleaseNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: always("succeeded")})
	m := e.mergeFiles("docs: explain", map[string]string{"services/api/README.md": "# api\n", "NOTES.txt": "x\n"})
	cr := e.waitCheck(m.sha)
	if cr.Conclusion != "neutral" || !strings.Contains(cr.Title, "no pipeline affected") {
		t.Errorf("shipbot/rollout %s %q; want neutral, no pipeline affected", cr.Conclusion, cr.Title)
	}
	if got := tagNames(e.gh); len(got) != 0 {
		t.Errorf("tags %v; want none", got)
	}
	if n := len(e.spin.received("")); n != 0 {
		t.Errorf("%d triggers; want none", n)
	}
}

// A pull request of more files than GitHub lists (3,000) may touch any
// pipeline: every one runs, and the PR's comment says why. The list costs
// the pages GitHub serves (30 of 100) and no more.
func TestMonorepoTooManyFilesRunsEveryPipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: always("succeeded")})
	files := map[string]string{}
	for i := range 3500 {
		// Listed or not, none of these starts a pipeline by itself.
		files[fmt.Sprintf("docs/gen/f%04d.txt", i)] = fmt.Sprintf("%d\n", i)
	}
	m := e.mergeFiles("docs: regenerate", files)
	// The fake works out the 3,000 listed files of each of 30 pages anew,
	// under the race detector: seconds, more on a busy machine.
	servicetest.Wait{Limit: 4 * waitFor, Interval: 50 * time.Millisecond}.Eventually(t, "the merge is evaluated", func() bool {
		r, err := e.st.RunBySHA(context.Background(), repo, m.sha)
		return err == nil && !r.Open()
	})
	rs := e.rolloutsOf(m, "api", "web")
	for _, p := range []string{"api", "web"} {
		if done := e.waitDone(rs[p].ID); stageOf(done, "prod").State != schedule.Passed {
			t.Errorf("%s: %s", p, e.snapshot(rs[p].ID))
		}
		e.checkNamed(m.sha, "shipbot/rollout: "+p)
	}
	e.parts.Reporter.Wait()
	const why = "GitHub lists at most 3,000 files of a pull request and this one changes 3,500"
	if c := e.waitComment(m.pr, "| prod | web/v0.1.0 | succeeded |"); !strings.Contains(c.Body, why) {
		t.Errorf("the sticky comment does not say why every pipeline runs:\n%s", c.Body)
	}
	for _, p := range []string{"api", "web"} {
		if cr := e.checkNamed(m.sha, "shipbot/rollout: "+p); !strings.Contains(cr.Summary, why) {
			t.Errorf("shipbot/rollout: %s does not say why it runs:\n%s", p, cr.Summary)
		}
	}
	if code, page := e.post("GET", "/runs/"+rs["api"].Run.ID, "", ""); code != 200 || !strings.Contains(page, why) {
		t.Errorf("the run's dashboard page (%d) does not say why every pipeline runs", code)
	}
	if n := e.gh.Count("GET /repos/{owner}/{repo}/pulls/{pull_number}/files"); n != 30 {
		t.Errorf("the files list cost %d calls; want 30 (3,000 files, 100 a page)", n)
	}
}

// shipbot/preview on a pull request lists every pipeline a merge would
// run, each with its version, stages and skips, and none it would not; a
// pull request that touches no pipeline is told so.
func TestMonorepoPreviewListsEveryPipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: always("succeeded")})
	preview := func(title string, files map[string]string, labels ...string) githubtest.CheckRun {
		t.Helper()
		n := e.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: title, Author: "alice", Labels: labels, Files: files})
		head := e.gh.PullRequest(repo, n).HeadSHA
		e.gh.SetStatus(repo, head, "ci/test", "success")
		e.gh.AddReview(repo, n, "bob", "APPROVED", "")
		e.waitDelivery(e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, n, "opened")))
		cr, ok := e.gh.CheckRun(repo, head, "shipbot/preview")
		if !ok || cr.Status != "completed" {
			t.Fatalf("no completed shipbot/preview on #%d: %+v", n, cr)
		}
		return cr
	}

	cr := preview("feat: search", map[string]string{"services/api/search.go": "package api\n", "libs/x.go": "package libs\n"}, "no-deploy-to-web/prod")
	if cr.Conclusion != "success" || cr.Title != "A merge would release api/v0.1.0, web/v0.1.0" {
		t.Errorf("preview of both: %s %q", cr.Conclusion, cr.Title)
	}
	for _, want := range []string{
		"A merge now would run 2 pipelines:", "#### api", "#### web", "**api/v0.1.0**", "**web/v0.1.0**",
		"| prod | spinnaker-prod | skipped (label no-deploy-to-web/prod) |",
	} {
		if !strings.Contains(cr.Summary, want) {
			t.Errorf("preview of both lacks %q:\n%s", want, cr.Summary)
		}
	}
	_, web, _ := strings.Cut(cr.Summary, "#### web")
	if api, _, _ := strings.Cut(cr.Summary, "#### web"); strings.Contains(api, "skipped") || !strings.Contains(web, "skipped") {
		t.Errorf("no-deploy-to-web/prod must skip web's prod only:\n%s", cr.Summary)
	}

	cr = preview("fix: web only", map[string]string{"services/web/app.ts": "x\n"})
	if cr.Conclusion != "success" || cr.Title != "A merge would release web/v0.1.0" || strings.Contains(cr.Summary, "#### api") {
		t.Errorf("preview of web alone: %s %q\n%s", cr.Conclusion, cr.Title, cr.Summary)
	}

	cr = preview("docs: explain", map[string]string{"services/api/README.md": "# api\n"})
	if cr.Conclusion != "neutral" || !strings.Contains(cr.Title, "no pipeline affected") {
		t.Errorf("preview of ignored files: %s %q", cr.Conclusion, cr.Title)
	}
	if n := len(e.gh.Tags(repo)); n != 0 {
		t.Errorf("previews made %d tags", n)
	}
}

// Each pipeline has its own queue: a later merge into web deploys while an
// earlier merge's api rollout still stands in qa, and a later merge into
// api waits behind it, as in the single form.
func TestMonorepoPipelinesNeverWaitForEachOther(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: func(tr trigger) string {
		if tr.str("pipeline") == "api" {
			return "" // api's deploys are reported by the test
		}
		return "succeeded"
	}})
	// api's triggers at a source (web's go to the same targets).
	apiAt := func(source string, n int) []trigger {
		t.Helper()
		var got []trigger
		eventually(t, fmt.Sprintf("%s received %d trigger(s) of api", source, n), func() bool {
			got = got[:0]
			for _, tr := range e.spin.received(source) {
				if tr.str("pipeline") == "api" {
					got = append(got, tr)
				}
			}
			return len(got) >= n
		})
		return got
	}
	first := e.rolloutsOf(e.mergeFiles("feat: api one", map[string]string{"services/api/a.go": "package api\n"}), "api")["api"]
	qa := apiAt("api-qa", 1)[0]

	web := e.rolloutsOf(e.mergeFiles("feat: web", map[string]string{"services/web/a.go": "package web\n"}), "web")["web"]
	if done := e.waitDone(web.ID); stageOf(done, "prod").State != schedule.Passed {
		t.Fatalf("web while api stands in qa: %s", e.snapshot(web.ID))
	}
	if got := e.stage(first.ID, "qa").State; got != schedule.Active {
		t.Fatalf("api qa %s; want still active (deploying)", got)
	}

	second := e.rolloutsOf(e.mergeFiles("fix: api two", map[string]string{"services/api/b.go": "package api\n"}), "api")["api"]
	e.idle(20)
	if got := e.stage(second.ID, "qa").State; got != schedule.Pending {
		t.Errorf("the second api version's qa %s while the first is in qa; want pending (api's own queue)", got)
	}
	if n := len(apiAt("api-qa", 1)); n != 1 {
		t.Errorf("api-qa received %d triggers of api; want the first version's only", n)
	}
	e.spin.report(qa, "succeeded")
	e.spin.report(apiAt("api-prod", 1)[0], "succeeded")
	if tag := apiAt("api-qa", 2)[1].str("tag"); tag != "api/v0.1.1" {
		t.Errorf("the second api version's qa trigger is for %q; want api/v0.1.1", tag)
	}
	if done := e.waitDone(first.ID); stageOf(done, "prod").State != schedule.Passed {
		t.Errorf("first api version: %s", e.snapshot(first.ID))
	}
}

// Each pipeline keeps its own concurrency: with api on latest and web on
// queue, three merges into both while the first holds qa leave api's
// middle version superseded and web's queued behind, each deploying in
// turn.
func TestMonorepoConcurrencyPerPipeline(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(monoConfig, "    paths: [\"services/api/**\", \"libs/**\"]\n",
		"    paths: [\"services/api/**\", \"libs/**\"]\n    concurrency: latest\n", 1)
	e := newEnv(t, options{config: cfg, constraints: monoConstraints(), decide: func(tr trigger) string {
		if tr.str("stage") == "qa" {
			return "" // qa is reported by the test
		}
		return "succeeded"
	}})
	qaOf := func(tag string) trigger {
		t.Helper()
		var got trigger
		eventually(t, "qa is triggered for "+tag, func() bool {
			for _, tr := range e.spin.received("api-qa") {
				if tr.str("tag") == tag {
					got = tr
					return true
				}
			}
			return false
		})
		return got
	}
	var merges []map[string]store.RolloutRun
	for i, title := range []string{"feat: one", "fix: two", "fix: three"} {
		m := e.mergeFiles(title, map[string]string{fmt.Sprintf("libs/f%d.go", i): "package libs\n"})
		merges = append(merges, e.rolloutsOf(m, "api", "web"))
	}
	e.spin.report(qaOf("api/v0.1.0"), "succeeded")
	e.spin.report(qaOf("web/v0.1.0"), "succeeded")

	// api (latest): the newest waiting version takes qa, the middle one is
	// superseded. web (queue): the next in merge order takes it.
	e.waitStage(merges[1]["api"].ID, "qa", "superseded")
	e.spin.report(qaOf("api/v0.1.2"), "succeeded")
	e.spin.report(qaOf("web/v0.1.1"), "succeeded")
	e.spin.report(qaOf("web/v0.1.2"), "succeeded")
	for i, want := range []map[string]schedule.StageState{
		{"api": schedule.Passed, "web": schedule.Passed},
		{"api": schedule.Superseded, "web": schedule.Passed},
		{"api": schedule.Passed, "web": schedule.Passed},
	} {
		for p, state := range want {
			if got := stageOf(e.waitDone(merges[i][p].ID), "prod").State; got != state {
				t.Errorf("merge %d, %s: prod %s; want %s", i+1, p, got, state)
			}
		}
	}
	for _, tr := range e.spin.received("api-qa") {
		if tr.str("tag") == "api/v0.1.1" {
			t.Errorf("api's superseded version was deployed to qa")
		}
	}
}

// no-deploy-to-prod skips prod in every pipeline; no-deploy-to-web/prod
// only in web.
func TestMonorepoSkipLabels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: always("succeeded")})
	both := map[string]string{"services/api/a.go": "package api\n", "services/web/a.go": "package web\n"}
	m := e.mergeFiles("fix: one", both, "no-deploy-to-web/prod")
	rs := e.rolloutsOf(m, "api", "web")
	api, web := e.waitDone(rs["api"].ID), e.waitDone(rs["web"].ID)
	if stageOf(api, "prod").State != schedule.Passed || stageOf(web, "prod").State != schedule.Skipped {
		t.Errorf("prod: api %s, web %s; want api passed, web skipped", stageOf(api, "prod").State, stageOf(web, "prod").State)
	}
	m2 := e.mergeFiles("fix: two", map[string]string{"services/api/b.go": "package api\n", "services/web/b.go": "package web\n"}, "no-deploy-to-prod")
	rs = e.rolloutsOf(m2, "api", "web")
	api, web = e.waitDone(rs["api"].ID), e.waitDone(rs["web"].ID)
	if stageOf(api, "prod").State != schedule.Skipped || stageOf(web, "prod").State != schedule.Skipped {
		t.Errorf("prod: api %s, web %s; want both skipped", stageOf(api, "prod").State, stageOf(web, "prod").State)
	}
	if api.Tag != "api/v0.1.1" || web.Tag != "web/v0.1.1" {
		t.Errorf("second tags %s, %s; want each line's next", api.Tag, web.Tag)
	}
}

// Both pipelines' rollouts survive a restart in the middle: the new
// process, which knows only the database, finishes both from where they
// stood, without triggering any stage again, and shows each once.
func TestMonorepoRestartMidRolloutOfBoth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: func(tr trigger) string {
		if tr.str("stage") == "prod" {
			return "" // prod's outcome is reported by the test, after the restart
		}
		return "succeeded"
	}})
	m := e.mergeFiles("feat: both", map[string]string{"services/api/a.go": "package api\n", "services/web/a.go": "package web\n"})
	rs := e.rolloutsOf(m, "api", "web")
	prods := e.spin.waitTriggers("api-prod", 2) // both pipelines deploying prod
	e.restart()
	e.idle(20)
	for _, tr := range prods {
		e.spin.report(tr, "succeeded")
	}
	for _, p := range []string{"api", "web"} {
		done := e.waitDone(rs[p].ID)
		if stageOf(done, "qa").State != schedule.Passed || stageOf(done, "prod").State != schedule.Passed {
			t.Errorf("%s after the restart: %s", p, e.snapshot(rs[p].ID))
		}
		if cr := e.checkNamed(m.sha, "shipbot/rollout: "+p); cr.Conclusion != "success" {
			t.Errorf("%s check %s", p, cr.Conclusion)
		}
		var names []string
		for _, cr := range e.gh.CheckRuns(repo, m.sha) {
			names = append(names, cr.Name)
		}
		if n := strings.Count(strings.Join(names, "\n"), "shipbot/rollout: "+p); n != 1 {
			t.Errorf("%d check runs %q on the merge commit; want one", n, "shipbot/rollout: "+p)
		}
	}
	// A trigger the old process sent but had not recorded as accepted is
	// sent again by the new one, as the same attempt: one key per pipeline.
	keys := map[string]map[string]bool{}
	for _, tr := range e.spin.received("api-prod") {
		p := tr.str("pipeline")
		if keys[p] == nil {
			keys[p] = map[string]bool{}
		}
		keys[p][tr.Header.Get("Idempotency-Key")] = true
	}
	if len(keys) != 2 || len(keys["api"]) != 1 || len(keys["web"]) != 1 {
		t.Errorf("prod trigger keys by pipeline %v; want one key each (no second attempt after the restart)", keys)
	}
	if n := len(e.stickyComments(m.pr)); n != 1 {
		t.Errorf("%d sticky comments; want one", n)
	}
}

// An approval in the pipelines: form is asked for and given as
// <pipeline>/<stage>, by that stage's approvers; the other pipeline does
// not wait for it.
func TestMonorepoApprovalNamesThePipeline(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(monoConfig, "      - {name: prod, target: spinnaker-prod}\n",
		"      - {name: prod, target: spinnaker-prod, approval: true, approvers: [erin]}\n", 1)
	e := newEnv(t, options{config: cfg, constraints: monoConstraints(), decide: always("succeeded")})
	e.gh.SetPermission(repo, "dave", "maintain")
	m := e.mergeFiles("feat: both", map[string]string{"libs/log.go": "package libs\n"})
	rs := e.rolloutsOf(m, "api", "web")
	const wait = `waiting for approval: comment "/shipbot approve api/prod"`
	e.waitWait(rs["api"].ID, "prod", wait)
	if done := e.waitDone(rs["web"].ID); stageOf(done, "prod").State != schedule.Passed {
		t.Errorf("web while api waits for approval: %s", e.snapshot(rs["web"].ID))
	}
	e.waitCommentTable(m.pr, "api", "/shipbot approve api/prod")
	eventually(t, "api's check run says it waits for approval", func() bool {
		cr, _ := e.gh.CheckRun(repo, m.sha, "shipbot/rollout: api")
		return cr.Title == "api/v0.1.0: waiting for approval of prod"
	})

	if reply := e.command(m.pr, "erin", "/shipbot approve prod"); !strings.Contains(reply.Body, "api/prod") || !strings.Contains(reply.Body, "web/prod") {
		t.Errorf("a bare stage both pipelines have answered %q; want the choices named", reply.Body)
	}
	if reply := e.command(m.pr, "dave", "/shipbot approve api/prod"); !strings.Contains(reply.Body, "erin") {
		t.Errorf("a maintainer not among api/prod's approvers answered %q; want the approvers named", reply.Body)
	}
	reply := e.command(m.pr, "erin", "/shipbot approve api/prod")
	if !strings.Contains(reply.Body, "Approved: api/v0.1.0 goes to prod") {
		t.Errorf("erin's approval answered %q", reply.Body)
	}
	if row := stageOf(e.waitDone(rs["api"].ID), "prod"); row.State != schedule.Passed || row.ApprovedBy != "erin" {
		t.Errorf("api prod %s approved by %q; want passed, approved by erin", row.State, row.ApprovedBy)
	}
}

// A process that crashes between the releases of a merge's pipelines
// (api's recorded, web's made on GitHub but not recorded), and another
// that crashes while both pipelines deploy prod: each new process knows
// only the database. Each pipeline ends with one release, one tag, one
// rollout, every stage deployed under one key, one check run; the PR one
// comment.
func TestMonorepoCrashMidReleaseAndMidRollout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: func(tr trigger) string {
		if tr.str("stage") == "prod" {
			return "" // reported by the test, after the second crash
		}
		return "succeeded"
	}})
	e.crashOn(true, func(req *http.Request) bool {
		if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/repos/"+repo+"/releases") {
			return false
		}
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		return strings.Contains(string(body), `"tag_name":"web/v0.1.0"`)
	})
	m := e.mergeFiles("feat: both", map[string]string{"services/api/a.go": "package api\n", "services/web/a.go": "package web\n"})
	e.crashAndRestart()
	if n := len(e.gh.Releases(repo)); n != 2 {
		t.Fatalf("%d releases when the process died at web's; want api's and web's", n)
	}

	rs := e.rolloutsOf(m, "api", "web")
	prods := e.spin.waitTriggers("api-prod", 2) // both pipelines deploying prod
	e.crashAndRestart()
	for _, tr := range prods {
		e.spin.report(tr, "succeeded")
	}
	for _, p := range []string{"api", "web"} {
		done := e.waitDone(rs[p].ID)
		if done.Tag != p+"/v0.1.0" || stageOf(done, "qa").State != schedule.Passed || stageOf(done, "prod").State != schedule.Passed {
			t.Errorf("%s after the crashes: %s %s", p, done.Tag, e.snapshot(rs[p].ID))
		}
		if cr := e.checkNamed(m.sha, "shipbot/rollout: "+p); cr.Conclusion != "success" {
			t.Errorf("%s check %s", p, cr.Conclusion)
		}
	}
	e.parts.Reporter.Wait()
	if got := tagNames(e.gh); !slices.Equal(got, []string{"api/v0.1.0", "web/v0.1.0"}) {
		t.Errorf("tags %v; want one per pipeline", got)
	}
	if n := e.gh.Count("POST /repos/{owner}/{repo}/releases"); n != 2 {
		t.Errorf("%d release creations reached GitHub; want 2 (web's, made before the crash, is reused)", n)
	}
	if rrs, err := e.st.RolloutsOf(context.Background(), rs["api"].Run.ID); err != nil || len(rrs) != 2 {
		t.Errorf("the merge has %d rollouts (%v); want one per pipeline", len(rrs), err)
	}
	// Every stage of every pipeline was triggered under one key: a re-sent
	// trigger is the same attempt.
	keys := map[string]map[string]bool{}
	for _, tr := range e.spin.received("") {
		k := tr.str("pipeline") + "/" + tr.str("stage")
		if keys[k] == nil {
			keys[k] = map[string]bool{}
		}
		keys[k][tr.Header.Get("Idempotency-Key")] = true
	}
	for _, k := range []string{"api/qa", "api/prod", "web/qa", "web/prod"} {
		if len(keys[k]) != 1 {
			t.Errorf("%s triggered under keys %v; want one", k, keys[k])
		}
	}
	var names []string
	for _, cr := range e.gh.CheckRuns(repo, m.sha) {
		names = append(names, cr.Name)
	}
	slices.Sort(names)
	if want := []string{"shipbot/rollout: api", "shipbot/rollout: web"}; !slices.Equal(names, want) {
		t.Errorf("check runs on the merge commit %q; want %q", names, want)
	}
	if n := len(e.stickyComments(m.pr)); n != 1 {
		t.Errorf("%d sticky comments; want one", n)
	}
}

// Commands on a merge of several pipelines name the pipeline; a bare
// stage several of them have is refused with the choices.
func TestMonorepoCommandsNameThePipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: always("succeeded")})
	e.gh.SetPermission(repo, "carol", "write")
	both := func(n string) map[string]string {
		return map[string]string{"services/api/" + n: "package api\n", "services/web/" + n: "package web\n"}
	}
	for _, rr := range e.rolloutsOf(e.mergeFiles("fix: one", both("a.go")), "api", "web") {
		e.waitDone(rr.ID)
	}
	m := e.mergeFiles("fix: two", both("b.go"))
	rs := e.rolloutsOf(m, "api", "web")
	e.waitDone(rs["api"].ID)
	e.waitDone(rs["web"].ID)

	reply := e.command(m.pr, "carol", "/shipbot rollback prod")
	if !strings.Contains(reply.Body, "api/prod") || !strings.Contains(reply.Body, "web/prod") {
		t.Errorf("an ambiguous stage answered %q; want the choices named", reply.Body)
	}
	reply = e.command(m.pr, "carol", "/shipbot rollback web/prod")
	if !strings.Contains(reply.Body, "Rolling prod back from web/v0.1.1 to web/v0.1.0") {
		t.Errorf("rollback of web/prod answered %q", reply.Body)
	}
	e.waitStage(rs["web"].ID, "prod", "rolled-back")
	if got := e.stage(rs["api"].ID, "prod").State; got != schedule.Passed {
		t.Errorf("api prod %s after web's rollback; want untouched", got)
	}
	status := e.command(m.pr, "carol", "/shipbot status")
	if !strings.Contains(status.Body, "api") || !strings.Contains(status.Body, "web/v0.1.1") {
		t.Errorf("status answered %q; want both pipelines", status.Body)
	}
	// A freeze from a merge of several pipelines holds every one of them.
	e.gh.SetPermission(repo, "dave", "maintain")
	e.command(m.pr, "dave", "/shipbot freeze incident")
	for _, p := range []string{"api", "web"} {
		if _, frozen, err := e.st.Frozen(context.Background(), repo+":"+p); err != nil || !frozen {
			t.Errorf("pipeline %s frozen %v (%v) after /shipbot freeze; want frozen", p, frozen, err)
		}
	}
	e.command(m.pr, "dave", "/shipbot unfreeze")
	for _, p := range []string{"api", "web"} {
		if _, frozen, err := e.st.Frozen(context.Background(), repo+":"+p); err != nil || frozen {
			t.Errorf("pipeline %s frozen %v (%v) after /shipbot unfreeze; want not", p, frozen, err)
		}
	}
}

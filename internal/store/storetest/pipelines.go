package storetest

import (
	"errors"
	"fmt"
	"slices"

	"github.com/shipbot/shipbot/internal/store"
)

// --- Several pipelines per run ----------------------------------------------
//
// A merge run has zero or more rollouts, one per pipeline it runs: each
// with its own release, order, stages and executions, none seeing the
// others'. The run's first rollout has the run's id, so every id users and
// downstreams have seen of a single-pipeline merge names its rollout.

var pipelinesCases = []testCase{
	{"StartRollout_first_rollout_has_the_run_id", firstRolloutRunID},
	{"StartRollout_two_pipelines_of_one_run", twoPipelinesOneRun},
	{"StartRollout_retry_per_pipeline_keeps_id_and_order", twoPipelinesRetry},
	{"StartRollout_retry_takes_the_release_as_known_now", startRolloutReleaseRetry},
	{"StartRollout_unknown_run", startRolloutUnknownRun},
	{"LoadRollout_each_pipeline_its_own", twoPipelinesLoad},
	{"stages_and_executions_per_rollout", twoPipelinesIndependent},
	{"LastDeployed_NewerEntered_per_pipeline", twoPipelinesHistory},
	{"FinishRollout_leaves_the_other_pipeline", twoPipelinesFinish},
	{"GetRollout_run_without_rollout", getRolloutRunOnly},
	{"RolloutsOf_every_pipeline_of_the_run", rolloutsOf},
	{"SetLabels_every_rollout_of_the_PR", twoPipelinesLabels},
	{"RolloutByPR_first_rollout_of_the_newest_run", twoPipelinesByPR},
	{"RunByTag_finds_a_rollout_release", twoPipelinesRunByTag},
	{"APICalls_of_a_rollout_count_for_its_run", twoPipelinesAPICalls},
	{"RecentRollouts_one_entry_per_rollout", twoPipelinesRecent},
	{"ListPipelines_LiveExecutions_per_pipeline", twoPipelinesDashboard},
}

// pkWeb is a second pipeline of repo, beside pk.
const pkWeb = "acme/api:web"

// webRelease is the release of repo's second pipeline, with a version line
// of its own.
var webRelease = store.Release{Version: "2.0.0", Tag: "web/v2.0.0", PrevTag: "web/v1.9.0", URL: "https://github.com/acme/api/releases/tag/web/v2.0.0"}

// startIn puts run r into pipeline key's rollout deploying rel, and returns
// the rollout.
func (e *env) startIn(r store.Run, key string, rel store.Release, stages ...string) store.RolloutRun {
	e.Helper()
	id, order, err := e.s.StartRollout(e.ctx, r.ID, key, rel, []byte("pipeline: "+key+"\n"), nil, stages)
	e.must(err)
	rr := e.rollout(id)
	if rr.Order != order || rr.PipelineKey != key {
		e.Fatalf("StartRollout gave %s order %d; GetRollout says order %d in %q", id, order, rr.Order, rr.PipelineKey)
	}
	return rr
}

// twoPipelines releases one run of repo (version 1.0.0 of pipeline "api")
// and starts it in pk (qa, prod) and in pkWeb (prod) with webRelease.
func (e *env) twoPipelines(sha string, pr int) (store.Run, store.RolloutRun, store.RolloutRun) {
	e.Helper()
	r := e.released(repo, sha, pr, "1.0.0")
	api := e.startIn(r, pk, r.Release(), "qa", "prod")
	web := e.startIn(r, pkWeb, webRelease, "prod")
	return r, api, web
}

func firstRolloutRunID(e *env) {
	r := e.released(repo, "a1", 7, "1.0.0")
	id, _, err := e.s.StartRollout(e.ctx, r.ID, pk, r.Release(), nil, nil, []string{"qa"})
	e.must(err)
	if id != r.ID {
		e.Errorf("the run's first rollout has id %q; want the run's %q (payloads, Idempotency-Keys and links name it)", id, r.ID)
	}
	rr := e.rollout(r.ID)
	if rr.ID != r.ID || rr.Run.ID != r.ID || rr.PipelineKey != pk || rr.Pipeline != "api" {
		e.Errorf("GetRollout(run id) = rollout %q of run %q in %q (pipeline %q); want the run's rollout in %s",
			rr.ID, rr.Run.ID, rr.PipelineKey, rr.Pipeline, pk)
	}
	if rr.Release() != r.Release() || rr.Version != "1.0.0" || rr.Tag != "v1.0.0" {
		e.Errorf("rollout release = %+v (version %q tag %q); want the run's %+v", rr.Release(), rr.Version, rr.Tag, r.Release())
	}
}

func twoPipelinesOneRun(e *env) {
	earlier := e.inRollout("a0", "0.9.0", "qa", "prod") // pk has a rollout already
	r, api, web := e.twoPipelines("a1", 7)
	if api.ID != r.ID {
		e.Errorf("first rollout id %q; want the run's %q", api.ID, r.ID)
	}
	if web.ID == "" || web.ID == r.ID || web.ID == api.ID {
		e.Errorf("second pipeline's rollout id %q; want one of its own (run %q)", web.ID, r.ID)
	}
	if api.Order != earlier.Order+1 {
		e.Errorf("order in %s = %d; want after the pipeline's last, %d", pk, api.Order, earlier.Order+1)
	}
	if web.Order != 1 {
		e.Errorf("order in %s = %d; want 1: each pipeline has its own order", pkWeb, web.Order)
	}
	for _, rr := range []store.RolloutRun{api, web} {
		if rr.Run.ID != r.ID || rr.Run.SHA != "a1" || rr.Run.PR != 7 || rr.Run.State != store.RunReleased {
			e.Errorf("rollout %s carries run %+v; want the merge run %s", rr.ID, rr.Run, r.ID)
		}
		if rr.Rollout != store.RolloutActive {
			e.Errorf("rollout %s is %q; want active", rr.ID, rr.Rollout)
		}
	}
	if api.Pipeline != "api" || web.Pipeline != "web" || string(web.Config) != "pipeline: "+pkWeb+"\n" {
		e.Errorf("pipelines %q and %q, web config %q; want api and web, each its own config", api.Pipeline, web.Pipeline, web.Config)
	}
	if web.Release() != webRelease || web.Version != "2.0.0" || web.Tag != "web/v2.0.0" {
		e.Errorf("web rollout release = %+v; want its own %+v", web.Release(), webRelease)
	}
	if web.Run.Version != "1.0.0" || web.Run.Tag != "v1.0.0" {
		e.Errorf("web rollout's run release = %s %s; want the run's intent kept, 1.0.0 v1.0.0", web.Run.Version, web.Run.Tag)
	}
	if got := e.states(api.ID); got != "[pending pending]" {
		e.Errorf("api stages = %s; want [pending pending]", got)
	}
	if got := e.states(web.ID); got != "[pending]" {
		e.Errorf("web stages = %s; want [pending]", got)
	}
	if s := e.rollout(web.ID).Stages; len(s) != 1 || s[0].Name != "prod" || s[0].Index != 0 {
		e.Errorf("web stages = %+v; want prod at index 0", s)
	}
}

func twoPipelinesRetry(e *env) {
	r, api, web := e.twoPipelines("a1", 0)
	e.inRollout("a2", "1.1.0", "qa", "prod")
	e.setState(web.ID, 0, active)
	// Retries after a crash, in the other order.
	for _, c := range []struct {
		key    string
		rel    store.Release
		stages []string
		want   store.RolloutRun
	}{{pkWeb, webRelease, []string{"prod"}, web}, {pk, r.Release(), []string{"qa", "prod"}, api}} {
		id, order, err := e.s.StartRollout(e.ctx, r.ID, c.key, c.rel, nil, nil, c.stages)
		e.must(err)
		if id != c.want.ID || order != c.want.Order {
			e.Errorf("StartRollout again in %s = %s order %d; want its first %s order %d", c.key, id, order, c.want.ID, c.want.Order)
		}
	}
	if got := e.states(web.ID); got != "[active]" {
		e.Errorf("web stages after the retry = %s; want them kept: [active]", got)
	}
	if got := e.rollout(api.ID).Config; string(got) != "pipeline: "+pk+"\n" {
		e.Errorf("api config after a retry = %q; want the first kept", got)
	}
}

func startRolloutReleaseRetry(e *env) {
	r := e.released(repo, "a1", 0, "1.0.0")
	first := r.Release()
	first.URL = "https://github.com/acme/api/releases/tag/v1.0.0"
	id, order, err := e.s.StartRollout(e.ctx, r.ID, pk, first, nil, nil, []string{"qa"})
	e.must(err)
	if got := e.rollout(id).ReleaseURL; got != first.URL {
		e.Errorf("release URL = %q; want %q", got, first.URL)
	}
	// The merge resumed after a crash and found its tag: it knows the
	// same version, but no release URL, and says so, as its run does.
	again := r.Release()
	id2, order2, err := e.s.StartRollout(e.ctx, r.ID, pk, again, nil, nil, []string{"qa"})
	e.must(err)
	got := e.rollout(id)
	if id2 != id || order2 != order || got.Release() != again {
		e.Errorf("retry = %s order %d release %+v; want %s order %d release %+v", id2, order2, got.Release(), id, order, again)
	}
}

func startRolloutUnknownRun(e *env) {
	_, _, err := e.s.StartRollout(e.ctx, "nope", pk, store.Release{Version: "1.0.0", Tag: "v1.0.0"}, nil, nil, []string{"qa"})
	if !errors.Is(err, store.ErrNotFound) {
		e.Errorf("StartRollout of an unknown run = %v; want ErrNotFound", err)
	}
	if runs, err := e.s.LoadRollout(e.ctx, pk); err != nil || len(runs) != 0 {
		e.Errorf("LoadRollout = %d rollouts, %v; want none", len(runs), err)
	}
}

func twoPipelinesLoad(e *env) {
	_, api, web := e.twoPipelines("a1", 0)
	other := e.inRollout("a2", "1.1.0", "qa", "prod")
	got, err := e.s.LoadRollout(e.ctx, pk)
	e.must(err)
	if fmt.Sprint(runIDs(got)) != fmt.Sprint([]string{api.ID, other.ID}) {
		e.Errorf("LoadRollout(%s) = %v; want its own two [%s %s]", pk, runIDs(got), api.ID, other.ID)
	}
	for _, rr := range got {
		if len(rr.Stages) != 2 || rr.PipelineKey != pk {
			e.Errorf("LoadRollout(%s) gave %s with %d stages in %q; want two stages in %s", pk, rr.ID, len(rr.Stages), rr.PipelineKey, pk)
		}
	}
	got, err = e.s.LoadRollout(e.ctx, pkWeb)
	e.must(err)
	if len(got) != 1 || got[0].ID != web.ID || len(got[0].Stages) != 1 || got[0].Stages[0].Name != "prod" || got[0].Tag != "web/v2.0.0" {
		e.Fatalf("LoadRollout(%s) = %+v; want only the web rollout with its prod stage and tag", pkWeb, got)
	}
	keys, err := e.s.PipelinesWithRollouts(e.ctx)
	e.must(err)
	if fmt.Sprint(sorted(keys)) != fmt.Sprint([]string{pk, pkWeb}) {
		e.Errorf("PipelinesWithRollouts = %v; want both pipelines", keys)
	}
}

func twoPipelinesIndependent(e *env) {
	_, api, web := e.twoPipelines("a1", 0)
	e.setState(api.ID, 0, passed)
	e.setWait(api.ID, 1, someWait(1))
	if got := e.states(web.ID); got != "[pending]" {
		e.Errorf("web stages after api's changed = %s; want [pending]", got)
	}
	e.checkWait(web.ID, 0, noWait, "web's prod after api's prod got a wait")

	ax := e.enter(api, 1, 1)
	wx := e.enter(web, 0, 1)
	if got := e.executionIDs(api.ID); fmt.Sprint(got) != fmt.Sprint([]string{ax.ID}) {
		e.Errorf("Executions(api) = %v; want only api's %s", got, ax.ID)
	}
	if got := e.executionIDs(web.ID); fmt.Sprint(got) != fmt.Sprint([]string{wx.ID}) {
		e.Errorf("Executions(web) = %v; want only web's %s", got, wx.ID)
	}
	if x, err := e.s.ExecutionByToken(e.ctx, wx.TokenHash); err != nil || x.RolloutID != web.ID {
		e.Errorf("ExecutionByToken(web's) = rollout %q, %v; want %s", x.RolloutID, err, web.ID)
	}
	if n, err := e.s.NextAttempt(e.ctx, web.ID, 1); err != nil || n != 1 {
		e.Errorf("NextAttempt(web, 1) = %d, %v; want 1: api's stage 1 attempt is not web's", n, err)
	}
	if n, err := e.s.NextAttempt(e.ctx, api.ID, 1); err != nil || n != 2 {
		e.Errorf("NextAttempt(api, 1) = %d, %v; want 2", n, err)
	}
	for key, want := range map[string]string{pk: ax.ID, pkWeb: wx.ID} {
		open, err := e.s.OpenExecutionsOf(e.ctx, key)
		e.must(err)
		if len(open) != 1 || open[0].ID != want {
			e.Errorf("OpenExecutionsOf(%s) = %d executions; want only %s", key, len(open), want)
		}
	}
	e.finish(wx, failure, failed)
	if got := e.states(api.ID); got != "[passed active]" {
		e.Errorf("api stages after web's failed = %s; want [passed active]: a failure in one pipeline does not stop another", got)
	}
	if got := e.states(web.ID); got != "[failed]" {
		e.Errorf("web stages = %s; want [failed]", got)
	}
	e.must(e.s.SetStageStatesFrom(e.ctx, api.ID, 0, superseded))
	if got := e.states(web.ID); got != "[failed]" {
		e.Errorf("web stages after api's superseded = %s; want [failed]", got)
	}
}

func twoPipelinesHistory(e *env) {
	// Two merges, each running both pipelines; the second one's web
	// rollout failed at prod.
	_, api1, web1 := e.twoPipelines("a1", 0)
	r2 := e.released(repo, "a2", 0, "1.1.0")
	api2 := e.startIn(r2, pk, r2.Release(), "qa", "prod")
	rel2 := store.Release{Version: "2.1.0", Tag: "web/v2.1.0", PrevTag: "web/v2.0.0"}
	web2 := e.startIn(r2, pkWeb, rel2, "prod")

	e.deployed(api1, 0)
	e.deployed(web1, 0) // deploys web1's own version, 2.0.0

	check := func(key string, idx int, before int64, want string) {
		e.Helper()
		version, tag, ok, err := e.s.LastDeployed(e.ctx, key, idx, before)
		e.must(err)
		got := "none"
		if ok {
			got = version + " " + tag
		}
		if got != want {
			e.Errorf("LastDeployed(%s, stage %d, before %d) = %s; want %s", key, idx, before, got, want)
		}
	}
	check(pk, 0, api2.Order, "1.0.0 v1.0.0")
	check(pk, 1, api2.Order, "none")
	// web's stage 0 is prod: what it restores is web's own version, not
	// api's qa deploy at the same index.
	check(pkWeb, 0, web2.Order, "2.0.0 web/v2.0.0")
	check(pkWeb, 0, web1.Order, "none")

	if tag, found, err := e.s.NewerEntered(e.ctx, pkWeb, 0, web1.Order); err != nil || found {
		e.Errorf("NewerEntered(web prod, after web1) = %q, %v, %v; want none yet", tag, found, err)
	}
	e.enter(web2, 0, 1)
	if tag, found, err := e.s.NewerEntered(e.ctx, pkWeb, 0, web1.Order); err != nil || !found || tag != "web/v2.1.0" {
		e.Errorf("NewerEntered(web prod, after web1) = %q, %v, %v; want web/v2.1.0, the web rollout's own tag", tag, found, err)
	}
	if tag, found, err := e.s.NewerEntered(e.ctx, pk, 0, api1.Order); err != nil || found {
		e.Errorf("NewerEntered(api qa, after api1) = %q, %v, %v; want none: web's prod is not api's qa", tag, found, err)
	}
}

func twoPipelinesFinish(e *env) {
	_, api, web := e.twoPipelines("a1", 0)
	e.must(e.s.FinishRollout(e.ctx, api.ID))
	if got := e.rollout(api.ID).Rollout; got != store.RolloutDone {
		e.Errorf("api rollout = %q; want done", got)
	}
	if got := e.rollout(web.ID).Rollout; got != store.RolloutActive {
		e.Errorf("web rollout after api's finished = %q; want still active", got)
	}
	keys, err := e.s.PipelinesWithRollouts(e.ctx)
	e.must(err)
	if fmt.Sprint(keys) != fmt.Sprint([]string{pkWeb}) {
		e.Errorf("PipelinesWithRollouts = %v; want [%s]", keys, pkWeb)
	}
	// A command reopens api's stage: web is not touched.
	e.setState(api.ID, 1, failed)
	e.must(e.s.ReopenStage(e.ctx, api.ID, 1, []stageState{failed}, "", ""))
	if !e.active(api.ID) || e.rollout(web.ID).Rollout != store.RolloutActive {
		e.Error("ReopenStage did not put api back, or changed web")
	}
}

func getRolloutRunOnly(e *env) {
	r := e.newRun(repo, "a1", 7)
	r.State, r.Pipeline, r.Version, r.Tag = store.RunReleasing, "api", "1.0.0", "v1.0.0"
	e.must(e.s.UpdateRun(e.ctx, r))
	rr := e.rollout(r.ID)
	if rr.ID != r.ID || rr.Run.ID != r.ID || rr.Rollout != "" || len(rr.Stages) != 0 || rr.PipelineKey != "" {
		e.Errorf("GetRollout of a run without rollout = id %q run %q rollout %q, %d stages, key %q; want the run alone",
			rr.ID, rr.Run.ID, rr.Rollout, len(rr.Stages), rr.PipelineKey)
	}
	if rr.Version != "1.0.0" || rr.Tag != "v1.0.0" || rr.Pipeline != "api" || rr.Run.State != store.RunReleasing {
		e.Errorf("GetRollout of a run without rollout = %q %q %q %q; want the run's own pipeline and release intent",
			rr.Pipeline, rr.Version, rr.Tag, rr.Run.State)
	}
}

func twoPipelinesLabels(e *env) {
	_, api, web := e.twoPipelines("a1", 7)
	e.must(e.s.SetLabels(e.ctx, repo, 7, []string{"semver:minor"}))
	for _, id := range []string{api.ID, web.ID} {
		if got := e.rollout(id).Labels; fmt.Sprint(got) != "[semver:minor]" {
			e.Errorf("labels of rollout %s = %v; want the PR's, on every pipeline's rollout", id, got)
		}
	}
}

func twoPipelinesByPR(e *env) {
	r, api, _ := e.twoPipelines("a1", 7)
	for range 3 {
		rr, err := e.s.RolloutByPR(e.ctx, repo, 7)
		e.must(err)
		if rr.ID != api.ID || rr.Run.ID != r.ID {
			e.Fatalf("RolloutByPR = %s of run %s; want the run's first rollout %s", rr.ID, rr.Run.ID, api.ID)
		}
	}
}

func twoPipelinesRunByTag(e *env) {
	r, _, _ := e.twoPipelines("a1", 0)
	for _, tag := range []string{"v1.0.0", "web/v2.0.0"} {
		got, ok, err := e.s.RunByTag(e.ctx, repo, tag)
		e.must(err)
		if !ok || got.ID != r.ID || got.SHA != "a1" {
			e.Errorf("RunByTag(%s) = %s, %v; want run %s, whose commit the version was cut from", tag, got.ID, ok, r.ID)
		}
	}
	if _, ok, err := e.s.RunByTag(e.ctx, "acme/web", "web/v2.0.0"); err != nil || ok {
		e.Errorf("RunByTag of another repository = %v, %v; want none", ok, err)
	}
}

func twoPipelinesAPICalls(e *env) {
	r, api, web := e.twoPipelines("a1", 0)
	e.must(e.s.AddAPICalls(e.ctx, r.ID, 2))
	e.must(e.s.AddAPICalls(e.ctx, web.ID, 3))
	e.must(e.s.AddAPICalls(e.ctx, api.ID, 1))
	for _, id := range []string{r.ID, api.ID, web.ID} {
		if n, err := e.s.APICalls(e.ctx, id); err != nil || n != 6 {
			e.Errorf("APICalls(%s) = %d, %v; want the merge's 6: one budget for every pipeline it runs", id, n, err)
		}
	}
}

func twoPipelinesRecent(e *env) {
	old := e.inRollout("a0", "0.9.0", "qa")
	r, api, web := e.twoPipelines("a1", 0)
	e.enter(web, 0, 1)
	got, err := e.s.RecentRollouts(e.ctx, store.RunsQuery{Limit: 1})
	e.must(err)
	ids := runIDs(got)
	if len(got) != 2 || !slices.Contains(ids, api.ID) || !slices.Contains(ids, web.ID) {
		e.Fatalf("RecentRollouts(1) = %v; want the newest run's two rollouts [%s %s]", ids, api.ID, web.ID)
	}
	for _, rr := range got {
		if rr.Run.ID != r.ID {
			e.Errorf("rollout %s of run %s; want run %s", rr.ID, rr.Run.ID, r.ID)
		}
		if rr.ID == web.ID && (len(rr.Stages) != 1 || rr.Stages[0].State != active || rr.Tag != "web/v2.0.0") {
			e.Errorf("web entry = stages %+v tag %q; want its own prod, active, and tag", rr.Stages, rr.Tag)
		}
		if rr.ID == api.ID && (len(rr.Stages) != 2 || rr.Stages[0].State != pending) {
			e.Errorf("api entry = stages %+v; want its own qa and prod", rr.Stages)
		}
	}
	all, err := e.s.RecentRollouts(e.ctx, store.RunsQuery{Limit: 10})
	e.must(err)
	if len(all) != 3 || all[2].ID != old.ID {
		e.Errorf("RecentRollouts(10) = %v; want both rollouts of the newest run, then %s", runIDs(all), old.ID)
	}
}

func twoPipelinesDashboard(e *env) {
	r, _, web := e.twoPipelines("a1", 3)
	x := e.enter(web, 0, 1)
	pipes, err := e.s.ListPipelines(e.ctx)
	e.must(err)
	var got []string
	for _, p := range pipes {
		got = append(got, fmt.Sprint(p.Key, p.Stages))
		if !sameTime(p.LastRunAt, r.CreatedAt) {
			e.Errorf("%s last run at %v; want the run's creation %v", p.Key, p.LastRunAt, r.CreatedAt)
		}
	}
	if want := fmt.Sprint([]string{pk + "[qa prod]", pkWeb + "[prod]"}); fmt.Sprint(got) != want {
		e.Errorf("ListPipelines = %v; want %s: each pipeline with its own stages", got, want)
	}
	live, err := e.s.LiveExecutions(e.ctx)
	e.must(err)
	if len(live) != 1 || live[0].ID != x.ID || live[0].PipelineKey != pkWeb || live[0].Repo != repo || live[0].PR != 3 || live[0].RolloutID != web.ID {
		e.Errorf("LiveExecutions = %+v; want web's execution, in %s, of %s#3", live, pkWeb, repo)
	}
}

func rolloutsOf(e *env) {
	r, api, web := e.twoPipelines("a1", 7)
	e.enter(api, 0, 1)
	got, err := e.s.RolloutsOf(e.ctx, r.ID)
	e.must(err)
	if len(got) != 2 || got[0].ID != api.ID || got[1].ID != web.ID {
		e.Fatalf("RolloutsOf = %d rollouts; want api's (the run's id) then web's", len(got))
	}
	if got[0].Tag != api.Tag || got[1].Tag != webRelease.Tag || got[1].PipelineKey != pkWeb {
		e.Errorf("releases %s, %s (%s); want each pipeline's own", got[0].Tag, got[1].Tag, got[1].PipelineKey)
	}
	if fmt.Sprint(len(got[0].Stages), got[0].Stages[0].State, len(got[1].Stages)) != "2 active 1" {
		e.Errorf("stages %+v / %+v; want api's two (qa active) and web's one", got[0].Stages, got[1].Stages)
	}
	if none, err := e.s.RolloutsOf(e.ctx, e.newRun(repo, "b2", 8).ID); err != nil || len(none) != 0 {
		e.Errorf("RolloutsOf a run without rollouts = %d, %v; want none", len(none), err)
	}
}

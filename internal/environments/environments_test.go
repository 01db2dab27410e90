package environments

import (
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// What a stage says it does, from the facts the store has: the live
// version is the newest successful deploy or rollback, a finished
// execution never makes a stage "deploying", and a wait is said in words.
func TestBuildSaysWhatEachStageDoes(t *testing.T) {
	const key = "acme/api:api"
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	v100 := store.Deployed{Stage: "prod", Version: "1.0.0", Tag: "v1.0.0", At: t0, RolloutID: "r1", PR: 11}
	v110 := store.Deployed{Stage: "prod", Version: "1.1.0", Tag: "v1.1.0", At: t0.Add(time.Hour), RolloutID: "r2", PR: 12}
	back := store.Deployed{Stage: "prod", Version: "1.0.0", Tag: "v1.0.0", At: t0.Add(2 * time.Hour), RolloutID: "r1", PR: 11, Rollback: true, From: "v1.1.0"}
	exec := func(phase rollout.Phase, rollback bool) store.LiveExecution {
		return store.LiveExecution{PipelineKey: key, PR: 13, Execution: store.Execution{RolloutID: "r3", StageName: "prod", Tag: "v1.2.0",
			Phase: phase, Rollback: rollback, CreatedAt: t0, BakeUntil: t0.Add(10 * time.Minute)}}
	}
	// A wave's targets: each its own execution of the run at the stage.
	target := func(name string, phase rollout.Phase, bake time.Duration) store.LiveExecution {
		x := exec(phase, false)
		x.Target, x.BakeUntil = name, t0.Add(bake)
		return x
	}
	opens := time.Date(2026, 3, 3, 1, 0, 0, 0, time.UTC)
	waitingRun := store.RolloutRun{ID: "r3", Tag: "v1.2.0", Run: store.Run{PR: 13}, Stages: []store.StageRow{
		{Name: "qa", State: schedule.Passed},
		{Name: "prod", State: schedule.Pending, Wait: rollout.Wait{Kind: schedule.Window, Until: opens}},
	}}
	queued := store.RolloutRun{ID: "r4", Tag: "v1.3.0", Stages: []store.StageRow{{Name: "prod", State: schedule.Pending}}}
	for _, tc := range []struct {
		name    string
		hist    []store.Deployed
		live    []store.LiveExecution
		active  []store.RolloutRun
		freeze  *store.Freeze
		live0   string // the live tag, "" for none
		state   State
		detail  string
		version string
	}{
		{name: "never deployed", state: Idle, detail: "nothing deployed here yet"},
		{name: "idle runs the newest", hist: []store.Deployed{v110, v100}, live0: "v1.1.0", state: Idle, detail: "runs v1.1.0"},
		{name: "rolled back", hist: []store.Deployed{back, v110, v100}, live0: "v1.0.0", state: Idle, detail: "runs v1.0.0 (rolled back from v1.1.0)"},
		{name: "frozen", hist: []store.Deployed{v100}, freeze: &store.Freeze{Reason: "incident 7"}, live0: "v1.0.0", state: Idle,
			detail: "runs v1.0.0; pipeline frozen: incident 7"},
		{name: "deploying", hist: []store.Deployed{v100}, live: []store.LiveExecution{exec(rollout.Deploying, false)}, live0: "v1.0.0",
			state: Deploying, detail: "deploying v1.2.0: waiting for the deploy system's report", version: "v1.2.0"},
		{name: "baking", hist: []store.Deployed{v100}, live: []store.LiveExecution{exec(rollout.Baking, false)}, live0: "v1.0.0",
			state: Baking, detail: "v1.2.0 deployed, baking until 2026-03-02T10:10:00Z while its alarms are watched", version: "v1.2.0"},
		{name: "rolling back", live: []store.LiveExecution{exec(rollout.Deploying, true)}, state: Deploying, detail: "rolling back to v1.2.0", version: "v1.2.0"},
		{name: "another pipeline's deploy is not this one's",
			live:  []store.LiveExecution{{PipelineKey: "acme/web:web", Execution: store.Execution{StageName: "prod", Phase: rollout.Deploying}}},
			state: Idle, detail: "nothing deployed here yet"},
		{name: "waiting in words", hist: []store.Deployed{v100}, active: []store.RolloutRun{queued, waitingRun}, live0: "v1.0.0",
			state: Waiting, detail: "v1.2.0 waiting for the deploy window, opens Tue 2026-03-03 01:00 UTC", version: "v1.2.0"},
		{name: "a wave deploying names every target",
			live:  []store.LiveExecution{target("eu", rollout.Deploying, 0), target("us", rollout.Deploying, 0)},
			state: Deploying, detail: "deploying v1.2.0 on eu, us: waiting for the deploy system's report", version: "v1.2.0"},
		{name: "a wave is as far as its least advanced target",
			live:  []store.LiveExecution{target("eu", rollout.Baking, 10*time.Minute), target("us", rollout.Deploying, 0)},
			state: Deploying, detail: "deploying v1.2.0 on us: waiting for the deploy system's report; eu deployed, baking", version: "v1.2.0"},
		{name: "a wave bakes until its last target has baked",
			live:  []store.LiveExecution{target("eu", rollout.Baking, 10*time.Minute), target("us", rollout.Baking, 12*time.Minute)},
			state: Baking, detail: "v1.2.0 deployed on eu, us, baking until 2026-03-02T10:12:00Z while its alarms are watched", version: "v1.2.0"},
		{name: "busy beats waiting", live: []store.LiveExecution{exec(rollout.Triggering, false)}, active: []store.RolloutRun{waitingRun},
			state: Deploying, detail: "deploying v1.2.0: sending the trigger", version: "v1.2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Build(store.Pipeline{Key: key, Stages: []string{"prod"}, Freeze: tc.freeze},
				map[string][]store.Deployed{"prod": tc.hist}, tc.live, tc.active)
			if p.Repo != "acme/api" || p.Name != "api" || len(p.Stages) != 1 {
				t.Fatalf("pipeline %+v", p)
			}
			st := p.Stages[0]
			live0 := ""
			if st.Live != nil {
				live0 = st.Live.Tag
			}
			if live0 != tc.live0 || st.State != tc.state || st.Detail != tc.detail || st.Version != tc.version {
				t.Errorf("prod = live %q, %s, %q, version %q\nwant live %q, %s, %q, version %q",
					live0, st.State, st.Detail, st.Version, tc.live0, tc.state, tc.detail, tc.version)
			}
			if len(st.History) != len(tc.hist) {
				t.Errorf("history has %d versions; want %d", len(st.History), len(tc.hist))
			}
		})
	}
}

package dashboard_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/dashboard"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

const waveConfig = `version: 1
pipeline: api
stages:
  - name: prod
    targets: [prod-eu, prod-us]
    approval: true
`

// The dashboard speaks waves and approvals: who approved or rejected a
// stage, the exact command a waiting stage needs, and a wave's executions
// one per target.
func TestDashboardShowsWavesAndApprovals(t *testing.T) {
	ctx := context.Background()
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	t.Cleanup(func() { st.Close() })
	release := func(sha string, pr int, version string) store.Run {
		t.Helper()
		r, _, err := st.CreateRun(ctx, store.Run{Repo: "acme/api", SHA: sha, Installation: 1, Branch: "main", Source: "push", PR: pr})
		if err != nil {
			t.Fatal(err)
		}
		r.State, r.Pipeline, r.Version, r.Tag = store.RunReleased, "api", version, "v"+version
		if err := st.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.StartRollout(ctx, r.ID, "acme/api:api", r.Release(), []byte(waveConfig), nil, []string{"prod"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Millisecond) // distinct timestamps
		return r
	}

	// v1.0.0: approved by dave, deployed to both regions at once.
	approved := release("aaaaaaa1", 7, "1.0.0")
	if err := st.ApproveStage(ctx, approved.ID, 0, "dave"); err != nil {
		t.Fatal(err)
	}
	var wave []store.Execution
	for _, target := range []string{"prod-eu", "prod-us"} {
		wave = append(wave, store.Execution{ID: "x-" + target, RolloutID: approved.ID, Stage: 0, StageName: "prod", Attempt: 1,
			Target: target, Version: "1.0.0", Tag: "v1.0.0", Phase: store.PhaseDeploying, TokenHash: "hash-" + target,
			Deadline: time.Now().Add(time.Hour)})
	}
	if err := st.EnterStage(ctx, wave...); err != nil {
		t.Fatal(err)
	}
	for i, x := range wave {
		x.Outcome = rollout.Succeeded
		state := schedule.Active
		if i == len(wave)-1 {
			state = schedule.Passed
		}
		if err := st.FinishExecution(ctx, x, state); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.FinishRollout(ctx, approved.ID); err != nil {
		t.Fatal(err)
	}

	// v1.1.0: rejected by erin; v1.2.0: waits for its approval.
	rejected := release("bbbbbbb2", 8, "1.1.0")
	if err := st.RejectStage(ctx, rejected.ID, 0, "erin", "not during the sale"); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRollout(ctx, rejected.ID); err != nil {
		t.Fatal(err)
	}
	waiting := release("ccccccc3", 9, "1.2.0")
	if err := st.SetWait(ctx, waiting.ID, 0, rollout.Wait{Kind: schedule.Approval, Approve: "prod"}); err != nil {
		t.Fatal(err)
	}

	d := &dashboard.Dashboard{Store: st}
	index := get(t, d, "/")
	if index.Code != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", index.Code, index.Body)
	}
	const command = `waiting for approval: comment &#34;/shipbot approve prod&#34;`
	mustContain(t, index.Body.String(),
		// The environments view: prod runs v1.0.0, v1.2.0 waits for the command.
		`<a class="live-version" href="/runs/`+approved.ID+`">v1.0.0</a>`,
		`<span class="chip env-waiting">waiting</span> <a href="/runs/`+waiting.ID+`">v1.2.0</a>`,
		`v1.2.0 `+command,
		// The runs: who approved, who rejected and why, what v1.2.0 waits for.
		`approved by @dave`, `rejected by @erin: not during the sale`, `prod pending</span> <span class="muted">`+command,
	)

	run := get(t, d, "/runs/"+approved.ID)
	if run.Code != http.StatusOK {
		t.Fatalf("GET /runs/%s = %d", approved.ID, run.Code)
	}
	body := run.Body.String()
	mustContain(t, body, `prod passed</span> <span class="muted by">approved by @dave</span>`,
		`<td data-label="stage"><strong>prod → prod-eu</strong></td>`, `<td data-label="stage"><strong>prod → prod-us</strong></td>`)
	if n := strings.Count(body, `<tr class="execution"`); n != 2 {
		t.Errorf("%d execution rows; want one per target", n)
	}
}

package pipeline

import (
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// waitOf keeps the scheduler's main reason as a typed wait, naming runs by
// the versions people know.
func TestWaitOfResolvesRunsToVersions(t *testing.T) {
	stages := shape{Pipeline: config.Pipeline{Name: "api", Stages: []config.Stage{{Name: "qa"}, {Name: "prod"}}}}
	multi := stages
	multi.cfg.Multi = true
	byID := map[string]*pipelineRun{"r1": {RolloutRun: store.RolloutRun{Run: store.Run{ID: "r1", Tag: "v1.2.0"}, ID: "r1", Tag: "v1.2.0"}}}
	opens := time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		reason schedule.Reason
		freeze string
		want   rollout.Wait
	}{
		{schedule.Reason{Kind: schedule.Behind, Run: "r1"}, "", rollout.Wait{Kind: schedule.Behind, Tag: "v1.2.0"}},
		{schedule.Reason{Kind: schedule.Busy, Run: "r1"}, "", rollout.Wait{Kind: schedule.Busy, Tag: "v1.2.0", Stage: "prod"}},
		{schedule.Reason{Kind: schedule.NewerWaiting, Run: "gone"}, "", rollout.Wait{Kind: schedule.NewerWaiting, Tag: "gone"}},
		{schedule.Reason{Kind: schedule.Frozen}, "incident 42", rollout.Wait{Kind: schedule.Frozen, Reason: "incident 42"}},
		{schedule.Reason{Kind: schedule.Window, Until: opens}, "", rollout.Wait{Kind: schedule.Window, Until: opens}},
		{schedule.Reason{Kind: schedule.Alarm, Alarm: "prod-errors"}, "", rollout.Wait{Kind: schedule.Alarm, Alarm: "prod-errors"}},
		{schedule.Reason{Kind: schedule.Approval}, "", rollout.Wait{Kind: schedule.Approval, Approve: "prod"}},
	} {
		got := waitOf(schedule.Wait{Run: "r0", Stage: 1, Reasons: []schedule.Reason{tc.reason}}, byID, stages, tc.freeze)
		if got != tc.want {
			t.Errorf("waitOf(%v) = %+v; want %+v", tc.reason, got, tc.want)
		}
	}
	// In a repository of several pipelines a command names the pipeline.
	approval := schedule.Wait{Run: "r0", Stage: 1, Reasons: []schedule.Reason{{Kind: schedule.Approval}}}
	if got, want := waitOf(approval, byID, multi, "").Text(), `waiting for approval: comment "/shipbot approve api/prod"`; got != want {
		t.Errorf("approval wait in the pipelines: form says %q; want %q", got, want)
	}
	if got := waitOf(schedule.Wait{Run: "r0", Stage: 1}, byID, stages, ""); !got.None() {
		t.Errorf("no reasons gave %+v; want no wait", got)
	}
}

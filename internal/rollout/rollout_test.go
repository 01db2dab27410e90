package rollout

import (
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/schedule"
)

// What the PR says of each wait, whether it is a blocker the reporter
// explains at once, and that it survives the store's encoding.
func TestWaitWordsAndBlockers(t *testing.T) {
	opens := time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		wait    Wait
		text    string
		blocker bool
	}{
		{Wait{}, "", false},
		{Wait{Kind: schedule.Behind, Tag: "v1.2.0"}, "waiting behind v1.2.0", false},
		{Wait{Kind: schedule.Busy, Tag: "v1.2.0", Stage: "prod"}, "waiting: prod is deploying v1.2.0", false},
		{Wait{Kind: schedule.NewerWaiting, Tag: "v1.3.0"}, "waiting; v1.3.0 will supersede it", false},
		{Wait{Kind: schedule.Frozen}, "waiting: pipeline frozen", true},
		{Wait{Kind: schedule.Frozen, Reason: "incident 42"}, "waiting: pipeline frozen (incident 42)", true},
		{Wait{Kind: schedule.Window}, "waiting for the deploy window", true},
		{Wait{Kind: schedule.Window, Until: opens}, "waiting for the deploy window, opens Mon 2030-01-07 10:00 UTC", true},
		{Wait{Kind: schedule.Alarm, Alarm: "prod-errors"}, "waiting: alarm prod-errors firing", true},
	} {
		if got := tc.wait.Text(); got != tc.text {
			t.Errorf("%+v.Text() = %q; want %q", tc.wait, got, tc.text)
		}
		if got := tc.wait.Blocker(); got != tc.blocker {
			t.Errorf("%+v.Blocker() = %v; want %v", tc.wait, got, tc.blocker)
		}
		enc, err := MarshalWait(tc.wait)
		if err != nil {
			t.Fatal(err)
		}
		if tc.wait.None() != (enc == "") {
			t.Errorf("%+v stored as %q", tc.wait, enc)
		}
		back, err := UnmarshalWait(enc)
		if err != nil || !back.Until.Equal(tc.wait.Until) {
			t.Fatalf("UnmarshalWait(%q) = %+v, %v", enc, back, err)
		}
		back.Until = tc.wait.Until
		if back != tc.wait {
			t.Errorf("round trip of %+v gave %+v", tc.wait, back)
		}
	}
	if _, err := UnmarshalWait("waiting behind v1"); err == nil {
		t.Error("words read back as a wait")
	}
}

func TestParseStageStateKnowsEveryState(t *testing.T) {
	for st := schedule.Pending; st <= schedule.Superseded; st++ {
		if got, err := ParseStageState(st.String()); err != nil || got != st {
			t.Errorf("ParseStageState(%q) = %v, %v", st.String(), got, err)
		}
	}
	if _, err := ParseStageState("done"); err == nil {
		t.Error(`ParseStageState("done") did not fail`)
	}
}

// Every view reads a stage through Project: which execution is the
// stage's latest, which deployed its version, and what that means.
func TestProject(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	stages := []Stage{
		{Index: 0, Name: "qa", State: schedule.Passed},
		{Index: 1, Name: "prod", State: schedule.Active},
		{Index: 2, Name: "eu", State: schedule.Pending, Wait: Wait{Kind: schedule.Alarm, Alarm: "eu-5xx"}},
	}
	execs := []Execution{
		{Stage: 0, Tag: "v2", Phase: Finished, Outcome: Succeeded, Pass: HandedOff, Reason: "handed off to qa-hook", CreatedAt: t0, FinishedAt: t0.Add(time.Minute)},
		{Stage: 1, Tag: "v2", Phase: Finished, Outcome: Failed, Reason: "boom", CreatedAt: t0.Add(2 * time.Minute), FinishedAt: t0.Add(3 * time.Minute)},
		{Stage: 1, Tag: "v1", Rollback: true, Phase: Deploying, CreatedAt: t0.Add(3 * time.Minute)},
	}
	v := Project(stages, execs)
	if len(v) != 3 {
		t.Fatalf("%d views", len(v))
	}
	if v[0].HowPassed() != HandedOff || v[0].Words() != "succeeded" {
		t.Errorf("qa: %v %q", v[0].HowPassed(), v[0].Words())
	}
	if v[1].Latest != &execs[2] || v[1].Deployed != &execs[1] || v[1].First != &execs[1] {
		t.Errorf("prod: latest %+v deployed %+v", v[1].Latest, v[1].Deployed)
	}
	if got := v[1].Words(); got != "rolling back to v1" || !v[1].Alerting() {
		t.Errorf("prod: %q alerting %v", got, v[1].Alerting())
	}
	if start, d, ok := v[1].Span(t0.Add(5 * time.Minute)); !ok || !start.Equal(t0.Add(2*time.Minute)) || d != 3*time.Minute {
		t.Errorf("prod span: %v %v %v", start, d, ok)
	}
	if v[2].Started() || v[2].Words() != "waiting: alarm eu-5xx firing" || !v[2].Alerting() {
		t.Errorf("eu: %q", v[2].Words())
	}
	if n := Count(v); n != (Tally{Total: 3, Passed: 1, Active: 1, Pending: 1}) {
		t.Errorf("Count = %+v", n)
	}
}

// A wait read back from the store names the same window opening in
// another location; Equal takes them as the same, or every engine pass
// would record the wait again.
func TestWaitEqual(t *testing.T) {
	opens := time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)
	w := Wait{Kind: schedule.Window, Until: opens}
	enc, _ := MarshalWait(w)
	back, _ := UnmarshalWait(enc)
	back.Until = back.Until.In(time.FixedZone("KST", 9*3600))
	if !w.Equal(back) {
		t.Errorf("%+v and %+v differ", w, back)
	}
	if w.Equal(Wait{Kind: schedule.Window, Until: opens.Add(time.Minute)}) || w.Equal(Wait{Kind: schedule.Alarm, Until: opens}) {
		t.Error("different waits are Equal")
	}
}

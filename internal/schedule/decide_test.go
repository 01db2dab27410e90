package schedule_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/internal/schedule"
)

var opens = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func TestDecide(t *testing.T) {
	const Q, L = schedule.Queue, schedule.Latest
	tests := []struct {
		name  string
		state schedule.State
		want  schedule.Decision
	}{
		{
			name:  "empty pipeline",
			state: pipeline(Q, 2),
		},
		{
			name:  "first run enters the first stage",
			state: pipeline(Q, 2, run("r1", 1, "..")),
			want:  schedule.Decision{Actions: []schedule.Action{enter("r1", 0)}},
		},
		{
			name:  "one active execution per unit: the next version waits for the unit",
			state: pipeline(Q, 2, run("r1", 1, "A."), run("r2", 2, "..")),
			want:  schedule.Decision{Waits: []schedule.Wait{wait("r2", 0, busy("r1"))}},
		},
		{
			name:  "two runs arriving together: the earlier enters, the later waits for it",
			state: pipeline(Q, 2, run("r2", 2, ".."), run("r1", 1, "..")),
			want: schedule.Decision{
				Actions: []schedule.Action{enter("r1", 0)},
				Waits:   []schedule.Wait{wait("r2", 0, busy("r1"))},
			},
		},
		{
			name: "queue: each waiting run names the run just ahead of it",
			state: pipeline(Q, 2, run("r0", 0, "A."), run("r1", 1, ".."), run("r2", 2, ".."),
				run("r3", 3, "..")),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r1", 0, busy("r0")),
				wait("r2", 0, behind("r1"), busy("r0")),
				wait("r3", 0, behind("r2"), busy("r0")),
			}},
		},
		{
			name:  "pipelining: the next version deploys to qa while the previous deploys to prod",
			state: pipeline(Q, 2, run("r1", 1, "P."), run("r2", 2, "..")),
			want:  schedule.Decision{Actions: []schedule.Action{enter("r2", 0), enter("r1", 1)}},
		},
		{
			name:  "pipelining while prod is busy",
			state: pipeline(Q, 2, run("r1", 1, "PA"), run("r2", 2, "P."), run("r3", 3, "..")),
			want: schedule.Decision{
				Actions: []schedule.Action{enter("r3", 0)},
				Waits:   []schedule.Wait{wait("r2", 1, busy("r1"))},
			},
		},
		{
			name:  "a run enters the next stage only after passing the current one",
			state: pipeline(Q, 3, run("r1", 1, "A..")),
		},
		{
			name:  "skip in the middle: skip staging and enter prod in one decision",
			state: pipeline(Q, 3, run("r1", 1, "P..", 1)),
			want:  schedule.Decision{Actions: []schedule.Action{skip("r1", 1), enter("r1", 2)}},
		},
		{
			name:  "skipping every stage completes the run at once",
			state: pipeline(Q, 2, run("r1", 1, "..", 0, 1)),
			want:  schedule.Decision{Actions: []schedule.Action{skip("r1", 0), skip("r1", 1)}},
		},
		{
			name:  "a skip needs no unit",
			state: pipeline(Q, 2, run("r1", 1, "A."), run("r2", 2, "..", 0)),
			want: schedule.Decision{
				Actions: []schedule.Action{skip("r2", 0)},
				Waits:   []schedule.Wait{wait("r2", 1, behind("r1"))},
			},
		},
		{
			name: "a skipped stage does not overtake ordering in the next stage",
			state: pipeline(Q, 3, run("r1", 1, "PA."), run("r2", 2, "P..", 1),
				run("r3", 3, "A..")),
			want: schedule.Decision{
				Actions: []schedule.Action{skip("r2", 1)},
				Waits:   []schedule.Wait{wait("r2", 2, behind("r1"))},
			},
		},
		{
			name:  "a skip keeps version order at its own stage too",
			state: pipeline(Q, 2, run("r0", 0, "A."), run("r1", 1, ".."), run("r2", 2, "..", 0)),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r1", 0, busy("r0")),
				wait("r2", 0, behind("r1")),
			}},
		},
		{
			name:  "the skipping run follows as soon as the earlier run enters",
			state: pipeline(Q, 2, run("r1", 1, ".."), run("r2", 2, "..", 0)),
			want: schedule.Decision{
				Actions: []schedule.Action{enter("r1", 0), skip("r2", 0)},
				Waits:   []schedule.Wait{wait("r2", 1, behind("r1"))},
			},
		},
		{
			name:  "failure stops the run and does not block the next version",
			state: pipeline(Q, 2, run("r1", 1, "F."), run("r2", 2, "P."), run("r3", 3, "..")),
			want:  schedule.Decision{Actions: []schedule.Action{enter("r3", 0), enter("r2", 1)}},
		},
		{
			name:  "a rolled back run never starts its later stages",
			state: pipeline(Q, 3, run("r1", 1, "PR.")),
		},
		{
			name:  "a run still active upstream holds later versions back downstream",
			state: pipeline(Q, 3, run("r1", 1, "PA."), run("r2", 2, "PS.")),
			want:  schedule.Decision{Waits: []schedule.Wait{wait("r2", 2, behind("r1"))}},
		},
		{
			name:  "a cancelled run enters nothing and blocks no one",
			state: pipeline(Q, 2, cancelled(run("r1", 1, "P.")), run("r2", 2, "P.")),
			want:  schedule.Decision{Actions: []schedule.Action{enter("r2", 1)}},
		},
		{
			name:  "a cancelled run's active execution still holds the unit",
			state: pipeline(Q, 2, cancelled(run("r1", 1, "A.")), run("r2", 2, "..")),
			want:  schedule.Decision{Waits: []schedule.Wait{wait("r2", 0, busy("r1"))}},
		},
		{
			name: "latest: of three waiting runs the newest enters, the older are superseded",
			state: pipeline(L, 3, run("r0", 0, "PPA"), run("r1", 1, "PP."), run("r2", 2, "PP."),
				run("r3", 3, "PP.")),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r1", 2, busy("r0"), newer("r3")),
				wait("r2", 2, busy("r0"), newer("r3")),
				wait("r3", 2, busy("r0")),
			}},
		},
		{
			name: "latest: when the unit frees, the newest enters and the older are superseded",
			state: pipeline(L, 3, run("r0", 0, "PPP"), run("r1", 1, "P.."), run("r2", 2, "P.."),
				run("r3", 3, "P..")),
			want: schedule.Decision{Actions: []schedule.Action{
				supersede("r1", 1), supersede("r2", 1), enter("r3", 1),
			}},
		},
		{
			name:  "latest: a run not yet at the stage is not superseded and waits behind",
			state: pipeline(L, 2, run("r1", 1, "P."), run("r2", 2, "A."), run("r3", 3, "S.")),
			want: schedule.Decision{
				Actions: []schedule.Action{enter("r1", 1)},
				Waits:   []schedule.Wait{wait("r3", 1, behind("r2"), busy("r1"))},
			},
		},
		{
			name:  "latest: a newest run that skips the stage supersedes no one",
			state: pipeline(L, 2, run("r1", 1, "P."), run("r2", 2, "P."), run("r3", 3, "P.", 1)),
			want: schedule.Decision{Actions: []schedule.Action{
				supersede("r1", 1), enter("r2", 1), skip("r3", 1),
			}},
		},
		{
			name: "latest: skippers between waiting runs keep their place",
			state: pipeline(L, 3, run("r1", 1, "P.."), run("r2", 2, "P..", 1), run("r3", 3, "P.."),
				run("r4", 4, "P..", 1)),
			want: schedule.Decision{
				// r2 is older than r3, so it may go on to prod while r3
				// deploys to staging; r4 is newer and has to wait for r3.
				Actions: []schedule.Action{
					supersede("r1", 1), skip("r2", 1), enter("r3", 1), skip("r4", 1), enter("r2", 2),
				},
				Waits: []schedule.Wait{wait("r4", 2, behind("r3"), busy("r2"))},
			},
		},
		{
			name:  "latest: one waiting run simply enters",
			state: pipeline(L, 2, run("r1", 1, "P."), run("r2", 2, "..")),
			want:  schedule.Decision{Actions: []schedule.Action{enter("r2", 0), enter("r1", 1)}},
		},
		{
			name: "latest: a blocked stage supersedes no one yet",
			state: func() schedule.State {
				s := pipeline(L, 2, run("r1", 1, "P."), run("r2", 2, "P."))
				s.Stages[1] = schedule.Stage{WindowClosed: true, WindowOpens: opens}
				return s
			}(),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r1", 1, window(opens), newer("r2")),
				wait("r2", 1, window(opens)),
			}},
		},
		{
			name: "blocked: outside the deploy window",
			state: func() schedule.State {
				s := pipeline(Q, 2, run("r1", 1, "P."), run("r2", 2, ".."))
				s.Stages[1] = schedule.Stage{WindowClosed: true, WindowOpens: opens}
				return s
			}(),
			want: schedule.Decision{
				Actions: []schedule.Action{enter("r2", 0)},
				Waits:   []schedule.Wait{wait("r1", 1, window(opens))},
			},
		},
		{
			name: "blocked: firing alarms, reported sorted and once",
			state: func() schedule.State {
				s := pipeline(Q, 2, run("r1", 1, "P."))
				s.Stages[1].Alarms = []string{"prod-latency", "prod-errors", "prod-latency"}
				return s
			}(),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r1", 1, alarm("prod-errors"), alarm("prod-latency")),
			}},
		},
		{
			name: "blocked: frozen pipeline admits nothing anywhere",
			state: func() schedule.State {
				s := pipeline(Q, 2, run("r1", 1, "P."), run("r2", 2, ".."))
				s.Frozen = true
				return s
			}(),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r1", 1, frozen()),
				wait("r2", 0, frozen()),
			}},
		},
		{
			name: "blocked: every reason, in order",
			state: func() schedule.State {
				s := pipeline(Q, 2, run("r0", 0, "PA"), run("r1", 1, "P."), run("r2", 2, "S."))
				s.Frozen = true
				s.Stages[1] = schedule.Stage{WindowClosed: true, Alarms: []string{"a"}}
				return s
			}(),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r1", 1, busy("r0"), frozen(), window(time.Time{}), alarm("a")),
				wait("r2", 1, behind("r1"), busy("r0"), frozen(), window(time.Time{}), alarm("a")),
			}},
		},
		{
			name: "blocked: a skip deploys nothing, so freeze and window do not hold it",
			state: func() schedule.State {
				s := pipeline(Q, 3, run("r1", 1, "P..", 1))
				s.Frozen = true
				s.Stages[1].WindowClosed = true
				return s
			}(),
			want: schedule.Decision{
				Actions: []schedule.Action{skip("r1", 1)},
				Waits:   []schedule.Wait{wait("r1", 2, frozen())},
			},
		},
		{
			name: "blocked: only the blocked stage waits",
			state: func() schedule.State {
				s := pipeline(Q, 2, run("r1", 1, "P."), run("r2", 2, ".."))
				s.Stages[0].Alarms = []string{"qa"}
				return s
			}(),
			want: schedule.Decision{
				Actions: []schedule.Action{enter("r1", 1)},
				Waits:   []schedule.Wait{wait("r2", 0, alarm("qa"))},
			},
		},
		{
			name: "forced: a run forced into a stage passes its window and alarms",
			state: func() schedule.State {
				r1 := run("r1", 1, "P.")
				r1.Force = schedule.SetOf(1)
				s := pipeline(Q, 2, r1, run("r2", 2, "P."))
				s.Stages[1] = schedule.Stage{WindowClosed: true, WindowOpens: opens, Alarms: []string{"a"}}
				return s
			}(),
			want: schedule.Decision{
				Actions: []schedule.Action{enter("r1", 1)},
				Waits:   []schedule.Wait{wait("r2", 1, busy("r1"), window(opens), alarm("a"))},
			},
		},
		{
			name: "forced: a freeze still holds a forced run",
			state: func() schedule.State {
				r1 := run("r1", 1, "P.")
				r1.Force = schedule.SetOf(1)
				s := pipeline(Q, 2, r1)
				s.Frozen = true
				s.Stages[1].WindowClosed = true
				return s
			}(),
			want: schedule.Decision{Waits: []schedule.Wait{wait("r1", 1, frozen())}},
		},
		{
			name: "forced: in latest mode too",
			state: func() schedule.State {
				r1 := run("r1", 1, "P.")
				r1.Force = schedule.SetOf(1)
				s := pipeline(L, 2, r1)
				s.Stages[1].Alarms = []string{"a"}
				return s
			}(),
			want: schedule.Decision{Actions: []schedule.Action{enter("r1", 1)}},
		},
		{
			name:  "approval: a run waits for its approval at a stage that needs one",
			state: gated(pipeline(Q, 2, run("r1", 1, "P.")), 1),
			want:  schedule.Decision{Waits: []schedule.Wait{wait("r1", 1, approval())}},
		},
		{
			name:  "approval: an approved run enters",
			state: gated(pipeline(Q, 2, approved(run("r1", 1, "P."), 1)), 1),
			want:  schedule.Decision{Actions: []schedule.Action{enter("r1", 1)}},
		},
		{
			name: "approval: versions still enter in order; approval is named first",
			state: gated(pipeline(Q, 2, run("r1", 1, "P."), approved(run("r2", 2, "P."), 1),
				run("r3", 3, "P.")), 1),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r1", 1, approval()),
				wait("r2", 1, behind("r1")),
				wait("r3", 1, approval(), behind("r2")),
			}},
		},
		{
			name: "approval: approving early while the stage is busy keeps the run's place",
			state: gated(pipeline(Q, 2, run("r1", 1, "PA"), approved(run("r2", 2, "P."), 1),
				run("r3", 3, "P.")), 1),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r2", 1, busy("r1")),
				wait("r3", 1, approval(), behind("r2"), busy("r1")),
			}},
		},
		{
			name: "approval: force passes the window, not the approval",
			state: func() schedule.State {
				r1 := run("r1", 1, "P.")
				r1.Force = schedule.SetOf(1)
				s := gated(pipeline(Q, 2, r1), 1)
				s.Stages[1].WindowClosed, s.Stages[1].WindowOpens = true, opens
				return s
			}(),
			want: schedule.Decision{Waits: []schedule.Wait{wait("r1", 1, approval())}},
		},
		{
			name:  "approval: a stage that needs none holds nobody",
			state: gated(pipeline(Q, 3, run("r1", 1, "P..")), 2),
			want:  schedule.Decision{Actions: []schedule.Action{enter("r1", 1)}},
		},
		{
			name:  "approval: a skip needs no approval",
			state: gated(pipeline(Q, 2, run("r1", 1, "P.", 1)), 1),
			want:  schedule.Decision{Actions: []schedule.Action{skip("r1", 1)}},
		},
		{
			name: "approval, latest: a newer version supersedes a waiting one and needs its own approval",
			state: gated(pipeline(L, 2, approved(run("r1", 1, "P."), 1), run("r2", 2, "P."),
				run("r3", 3, "P.", 1)), 1),
			want: schedule.Decision{
				Actions: []schedule.Action{supersede("r1", 1)},
				Waits: []schedule.Wait{
					wait("r2", 1, approval()),
					wait("r3", 1, behind("r2")),
				},
			},
		},
		{
			name:  "approval, latest: the approved newest enters and supersedes the older",
			state: gated(pipeline(L, 2, run("r1", 1, "P."), approved(run("r2", 2, "P."), 1)), 1),
			want:  schedule.Decision{Actions: []schedule.Action{supersede("r1", 1), enter("r2", 1)}},
		},
		{
			name:  "approval, latest: a busy stage supersedes no one yet",
			state: gated(pipeline(L, 2, run("r0", 0, "PA"), run("r1", 1, "P."), run("r2", 2, "P.")), 1),
			want: schedule.Decision{Waits: []schedule.Wait{
				wait("r1", 1, approval(), busy("r0"), newer("r2")),
				wait("r2", 1, approval(), busy("r0")),
			}},
		},
		{
			name:  "finished runs need nothing",
			state: pipeline(Q, 2, run("r1", 1, "PP"), run("r2", 2, "SP"), run("r3", 3, "PX")),
		},
		{
			name:  "no stages: nothing to do",
			state: pipeline(Q, 0, run("r1", 1, "")),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.state.Clone()
			got, err := schedule.Decide(tc.state)
			if err != nil {
				t.Fatalf("Decide: %v\n%s", err, dump(tc.state))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decide mismatch (-want +got):\n%s\n%s", diff, dump(tc.state))
			}
			if diff := cmp.Diff(before, tc.state); diff != "" {
				t.Errorf("Decide modified its input (-before +after):\n%s", diff)
			}
			// The order runs are listed in must not matter.
			shuffled := tc.state.Clone()
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled.Runs), func(i, j int) {
				shuffled.Runs[i], shuffled.Runs[j] = shuffled.Runs[j], shuffled.Runs[i]
			})
			if again, _ := schedule.Decide(shuffled); !cmp.Equal(got, again) {
				t.Errorf("Decide depends on run order: %v vs %v", got, again)
			}
			// Every prefix of the actions is allowed, in order.
			applied := tc.state.Clone()
			for _, a := range got.Actions {
				if err := applied.Apply(a); err != nil {
					t.Fatalf("Apply(%v): %v", a, err)
				}
				if err := applied.Validate(); err != nil {
					t.Fatalf("after %v: %v", a, err)
				}
			}
			// Deciding again after applying everything adds no action.
			if again, err := schedule.Decide(applied); err != nil || len(again.Actions) != 0 {
				t.Errorf("second decision: %v, %v", again.Actions, err)
			}
		})
	}
}

func TestApplySupersedeMarksLaterStages(t *testing.T) {
	s := pipeline(schedule.Latest, 3, run("r1", 1, "P.."), run("r2", 2, "P.."))
	if err := s.Apply(supersede("r1", 1)); err != nil {
		t.Fatal(err)
	}
	want := []schedule.StageState{schedule.Passed, schedule.Superseded, schedule.Superseded}
	if diff := cmp.Diff(want, s.Runs[0].Stages); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	if !s.Runs[0].Stopped() || !s.Runs[0].Done() || s.Runs[0].Complete() {
		t.Errorf("superseded run: stopped=%v done=%v complete=%v", s.Runs[0].Stopped(), s.Runs[0].Done(),
			s.Runs[0].Complete())
	}
}

func TestApplyRefuses(t *testing.T) {
	tests := []struct {
		name   string
		state  schedule.State
		action schedule.Action
	}{
		{"enter a busy unit", pipeline(schedule.Queue, 1, run("r1", 1, "A"), run("r2", 2, ".")), enter("r2", 0)},
		{"enter out of order", pipeline(schedule.Queue, 1, run("r1", 1, "."), run("r2", 2, ".")), enter("r2", 0)},
		{"skip out of order", pipeline(schedule.Queue, 1, run("r1", 1, "."), run("r2", 2, ".")), skip("r2", 0)},
		{"enter before passing the previous stage", pipeline(schedule.Queue, 2, run("r1", 1, "A.")), enter("r1", 1)},
		{"enter twice", pipeline(schedule.Queue, 2, run("r1", 1, "P.")), enter("r1", 0)},
		{"enter after failing", pipeline(schedule.Queue, 2, run("r1", 1, "F.")), enter("r1", 1)},
		{"enter when cancelled", pipeline(schedule.Queue, 1, cancelled(run("r1", 1, "."))), enter("r1", 0)},
		{"supersede an active run", pipeline(schedule.Latest, 1, run("r1", 1, "A")), supersede("r1", 0)},
		{"unknown run", pipeline(schedule.Queue, 1), enter("nope", 0)},
		{"no such stage", pipeline(schedule.Queue, 1, run("r1", 1, ".")), enter("r1", 1)},
		{"unknown kind", pipeline(schedule.Queue, 1, run("r1", 1, ".")), schedule.Action{Run: "r1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.state.Clone()
			err := tc.state.Apply(tc.action)
			if !errors.Is(err, schedule.ErrNotAllowed) {
				t.Fatalf("Apply(%v) = %v, want ErrNotAllowed", tc.action, err)
			}
			if diff := cmp.Diff(before, tc.state); diff != "" {
				t.Errorf("refused Apply changed the state:\n%s", diff)
			}
		})
	}
}

func TestFinishCancelAddRun(t *testing.T) {
	s := pipeline(schedule.Queue, 2)
	if err := s.AddRun("r1", 5, schedule.SetOf(1)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		id    string
		order int64
	}{{"r1", 6}, {"r2", 5}, {"r2", 4}, {"", 9}} {
		if err := s.AddRun(bad.id, bad.order, 0); !errors.Is(err, schedule.ErrNotAllowed) {
			t.Errorf("AddRun(%q, %d) = %v, want ErrNotAllowed", bad.id, bad.order, err)
		}
	}
	if err := s.Finish("r1", 0, schedule.Passed); !errors.Is(err, schedule.ErrNotAllowed) {
		t.Errorf("Finish on a pending stage = %v", err)
	}
	if err := s.Apply(enter("r1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish("r1", 0, schedule.Skipped); !errors.Is(err, schedule.ErrNotAllowed) {
		t.Errorf("Finish with outcome skipped = %v", err)
	}
	if err := s.Cancel("r1"); err != nil {
		t.Fatal(err)
	}
	if s.Runs[0].Done() {
		t.Error("a cancelled run with an active execution is not done")
	}
	if err := s.Finish("r1", 0, schedule.Passed); err != nil {
		t.Fatal(err)
	}
	if !s.Runs[0].Done() || s.Runs[0].Complete() {
		t.Errorf("cancelled run after its execution: done=%v complete=%v", s.Runs[0].Done(), s.Runs[0].Complete())
	}
	d, err := schedule.Decide(s)
	if err != nil || len(d.Actions)+len(d.Waits) != 0 {
		t.Errorf("cancelled run still scheduled: %+v, %v", d, err)
	}
	if err := s.Cancel("nope"); !errors.Is(err, schedule.ErrNotAllowed) {
		t.Errorf("Cancel(unknown) = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tooMany := pipeline(schedule.Queue, schedule.MaxStages+1)
	tests := []struct {
		name  string
		state schedule.State
	}{
		{"two active executions in one unit", pipeline(schedule.Queue, 1, run("r1", 1, "A"), run("r2", 2, "A"))},
		{"a later version reached a stage an earlier one still could", pipeline(schedule.Queue, 1,
			run("r1", 1, "."), run("r2", 2, "P"))},
		{"a later version active ahead of a waiting earlier one", pipeline(schedule.Latest, 2,
			run("r1", 1, "P."), run("r2", 2, "PA"))},
		{"passed after pending", pipeline(schedule.Queue, 2, run("r1", 1, ".P"))},
		{"active in two stages", pipeline(schedule.Queue, 2, run("r1", 1, "AA"))},
		{"started after failing", pipeline(schedule.Queue, 2, run("r1", 1, "FA"))},
		{"superseded then pending then superseded", pipeline(schedule.Queue, 3, run("r1", 1, "X.X"))},
		{"unknown stage state", pipeline(schedule.Queue, 1, schedule.Run{ID: "r1", Stages: []schedule.StageState{99}})},
		{"wrong number of stage states", pipeline(schedule.Queue, 2, run("r1", 1, "."))},
		{"duplicate id", pipeline(schedule.Queue, 1, run("r1", 1, "."), run("r1", 2, "."))},
		{"duplicate order", pipeline(schedule.Queue, 1, run("r1", 1, "."), run("r2", 1, "."))},
		{"empty id", pipeline(schedule.Queue, 1, run("", 1, "."))},
		{"unknown mode", pipeline(schedule.Mode(7), 1)},
		{"too many stages", tooMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.state.Validate(); !errors.Is(err, schedule.ErrInvalidState) {
				t.Errorf("Validate = %v, want ErrInvalidState", err)
			}
			if _, err := schedule.Decide(tc.state); !errors.Is(err, schedule.ErrInvalidState) {
				t.Errorf("Decide error = %v, want ErrInvalidState", err)
			}
		})
	}
	ok := pipeline(schedule.Queue, 3, run("r1", 1, "PSX"), run("r2", 2, "PXX"), cancelled(run("r3", 3, "A..")),
		run("r4", 4, "S.."))
	if err := ok.Validate(); err != nil {
		t.Errorf("valid state: %v", err)
	}
}

// An interrupted latest-mode decision (a crash after some of its actions)
// must never let an older run in after the newer one: the supersedes come
// first, and deciding again from any prefix finishes the job the same way.
func TestLatestActionPrefixes(t *testing.T) {
	s := pipeline(schedule.Latest, 2, run("r0", 0, "PP"), run("r1", 1, "P."), run("r2", 2, "P.", 1),
		run("r3", 3, "P."), run("r4", 4, "P."))
	full, err := schedule.Decide(s)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(full.Actions) + 1 {
		p := s.Clone()
		for _, a := range full.Actions[:n] {
			if err := p.Apply(a); err != nil {
				t.Fatalf("prefix %d: Apply(%v): %v", n, a, err)
			}
		}
		rest, err := schedule.Decide(p)
		if err != nil {
			t.Fatalf("prefix %d: %v", n, err)
		}
		if diff := cmp.Diff(full.Actions[n:], rest.Actions, cmpEmpty); diff != "" {
			t.Errorf("prefix %d: remaining actions (-want +got):\n%s", n, diff)
		}
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []schedule.Action) bool {
	return len(a) == 0 && len(b) == 0 || slices.Equal(a, b)
})

func TestParseMode(t *testing.T) {
	for in, want := range map[string]schedule.Mode{"": schedule.Queue, "queue": schedule.Queue, "latest": schedule.Latest} {
		if got, err := schedule.ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := schedule.ParseMode("Latest"); err == nil {
		t.Error("ParseMode accepts an unknown mode")
	}
}

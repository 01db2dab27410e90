package schedule_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/schedule"
)

// Stage states in tests are written one letter per stage.
var letters = map[byte]schedule.StageState{
	'.': schedule.Pending,
	'A': schedule.Active,
	'P': schedule.Passed,
	'S': schedule.Skipped,
	'F': schedule.Failed,
	'R': schedule.RolledBack,
	'X': schedule.Superseded,
}

func letter(s schedule.StageState) byte {
	for b, v := range letters {
		if v == s {
			return b
		}
	}
	return '?'
}

// run builds a run from its stage letters, e.g. run("r2", 2, "PA.").
func run(id string, order int64, stages string, skip ...int) schedule.Run {
	r := schedule.Run{ID: id, Order: order, Skip: schedule.SetOf(skip...)}
	for i := range len(stages) {
		st, ok := letters[stages[i]]
		if !ok {
			panic(fmt.Sprintf("bad stage letter %q", stages[i]))
		}
		r.Stages = append(r.Stages, st)
	}
	return r
}

func cancelled(r schedule.Run) schedule.Run {
	r.Cancelled = true
	return r
}

func pipeline(mode schedule.Mode, stages int, runs ...schedule.Run) schedule.State {
	return schedule.State{Mode: mode, Stages: make([]schedule.Stage, stages), Runs: runs}
}

func enter(id string, k int) schedule.Action {
	return schedule.Action{Kind: schedule.Enter, Run: id, Stage: k}
}

func skip(id string, k int) schedule.Action {
	return schedule.Action{Kind: schedule.Skip, Run: id, Stage: k}
}

func supersede(id string, k int) schedule.Action {
	return schedule.Action{Kind: schedule.Supersede, Run: id, Stage: k}
}

func wait(id string, k int, reasons ...schedule.Reason) schedule.Wait {
	return schedule.Wait{Run: id, Stage: k, Reasons: reasons}
}

func busy(id string) schedule.Reason   { return schedule.Reason{Kind: schedule.Busy, Run: id} }
func behind(id string) schedule.Reason { return schedule.Reason{Kind: schedule.Behind, Run: id} }
func newer(id string) schedule.Reason  { return schedule.Reason{Kind: schedule.NewerWaiting, Run: id} }
func frozen() schedule.Reason          { return schedule.Reason{Kind: schedule.Frozen} }
func window(t time.Time) schedule.Reason {
	return schedule.Reason{Kind: schedule.Window, Until: t}
}
func alarm(name string) schedule.Reason { return schedule.Reason{Kind: schedule.Alarm, Alarm: name} }
func approval() schedule.Reason         { return schedule.Reason{Kind: schedule.Approval} }

// gated makes stages ks of s need approval.
func gated(s schedule.State, ks ...int) schedule.State {
	for _, k := range ks {
		s.Stages[k].NeedsApproval = true
	}
	return s
}

// approved approves r into stages ks.
func approved(r schedule.Run, ks ...int) schedule.Run {
	r.Approved = schedule.SetOf(ks...)
	return r
}

// dump renders a state compactly for failure messages.
func dump(s schedule.State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mode=%s frozen=%v stages=%d\n", s.Mode, s.Frozen, len(s.Stages))
	for k, st := range s.Stages {
		if st.WindowClosed || len(st.Alarms) > 0 {
			fmt.Fprintf(&b, "  stage %d: windowClosed=%v alarms=%v\n", k, st.WindowClosed, st.Alarms)
		}
	}
	for _, r := range s.Runs {
		var ls []byte
		for _, st := range r.Stages {
			ls = append(ls, letter(st))
		}
		fmt.Fprintf(&b, "  %s order=%d %s skip=%b cancelled=%v\n", r.ID, r.Order, ls, uint64(r.Skip), r.Cancelled)
	}
	return b.String()
}

package schedule_test

import (
	"fmt"
	"testing"

	"github.com/shipbot/shipbot/internal/schedule"
)

// burst is the design's 200-merges-in-a-second case caught mid-flight on a
// three-stage pipeline: one run in each stage, a few that skip staging, and
// the rest queued for the first stage. With busy set, every unit is taken;
// without, the first two stages have just freed, so the decision admits
// runs and, in latest mode, supersedes almost the whole queue.
func burst(mode schedule.Mode, busy bool) schedule.State {
	s := pipeline(mode, 3)
	for i := range 200 {
		r := run(fmt.Sprintf("r%03d", i), int64(i+1), "...")
		switch {
		case i == 0:
			r = run(r.ID, r.Order, "PPA")
		case i == 1:
			r = run(r.ID, r.Order, "PP.")
		case i == 2:
			r = run(r.ID, r.Order, "P..")
		case i%10 == 0:
			r.Skip = schedule.SetOf(1)
		}
		if busy && i < 3 {
			r.Stages[2-i] = schedule.Active
		}
		s.Runs = append(s.Runs, r)
	}
	return s
}

func BenchmarkDecide(b *testing.B) {
	for _, mode := range []schedule.Mode{schedule.Queue, schedule.Latest} {
		for _, busy := range []bool{true, false} {
			s := burst(mode, busy)
			if _, err := schedule.Decide(s); err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/busy=%v", mode, busy), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := schedule.Decide(s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

package pipeline

import (
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/schedule"
)

// The reporter explains blocker waits at once and waiting in line as its
// budget allows; it tells them apart by Blocked, over the words waitText
// writes. Both live here; this keeps them agreeing.
func TestBlockedKnowsEveryWaitText(t *testing.T) {
	stages := []config.Stage{{Name: "qa"}, {Name: "prod"}}
	for _, tc := range []struct {
		reason  schedule.Reason
		freeze  string
		blocked bool
	}{
		{schedule.Reason{Kind: schedule.Frozen}, "", true},
		{schedule.Reason{Kind: schedule.Frozen}, "incident 42", true},
		{schedule.Reason{Kind: schedule.Window}, "", true},
		{schedule.Reason{Kind: schedule.Window, Until: time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)}, "", true},
		{schedule.Reason{Kind: schedule.Alarm, Alarm: "prod-errors"}, "", true},
		{schedule.Reason{Kind: schedule.Behind, Run: "r1"}, "", false},
		{schedule.Reason{Kind: schedule.Busy, Run: "r1"}, "", false},
		{schedule.Reason{Kind: schedule.NewerWaiting, Run: "r2"}, "", false},
	} {
		text := waitText(schedule.Wait{Run: "r0", Stage: 1, Reasons: []schedule.Reason{tc.reason}}, nil, stages, tc.freeze)
		if got := Blocked(text); got != tc.blocked {
			t.Errorf("Blocked(%q) = %v; want %v", text, got, tc.blocked)
		}
	}
}

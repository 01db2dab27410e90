package report

import "testing"

// TestPlanWrite walks a two-stage merge's writes (allowance 10) with the
// budget free and under pressure, and the writes that go whatever the
// cost.
func TestPlanWrite(t *testing.T) {
	type want struct{ check, comment bool }
	for _, tc := range []struct {
		name string
		s    writeState
		want want
	}{
		{"first write, budget free: check run created, comment too",
			writeState{checkChanged: true, commentChanged: true, spent: 2, allowance: 10, reserve: 5}, want{true, true}},
		{"first write under pressure: the check run only; the comment waits for the end",
			writeState{pressed: true, checkChanged: true, commentChanged: true, spent: 2, allowance: 10, reserve: 5}, want{true, false}},
		{"progress with one write to spare: the check run follows",
			writeState{checkChanged: true, commentChanged: true, checkExists: true, commentExists: true, spent: 6, allowance: 10, reserve: 3}, want{true, false}},
		{"progress past the allowance: nothing",
			writeState{checkChanged: true, commentChanged: true, checkExists: true, commentExists: true, spent: 7, allowance: 10, reserve: 3}, want{false, false}},
		{"progress under pressure: nothing",
			writeState{pressed: true, checkChanged: true, commentChanged: true, checkExists: true, commentExists: true, spent: 3, allowance: 10, reserve: 3}, want{false, false}},
		{"the end, under pressure and past the allowance: both",
			writeState{final: true, pressed: true, checkChanged: true, commentChanged: true, checkExists: true, spent: 40, allowance: 10}, want{true, true}},
		{"the end, comment unchanged: the check run only",
			writeState{final: true, checkChanged: true, checkExists: true, spent: 8, allowance: 10}, want{true, false}},
		{"a failure, rollback, blocker or bake shows at once",
			writeState{alerting: true, pressed: true, checkChanged: true, commentChanged: true, checkExists: true, spent: 40, allowance: 10}, want{true, true}},
		{"nothing changed: nothing",
			writeState{checkExists: true, spent: 2, allowance: 10}, want{false, false}},
		{"a run restarted without its count (spent unknown): the check run still gets created",
			writeState{checkChanged: true, commentChanged: true, spent: 1 << 20, allowance: 10, reserve: 5}, want{true, false}},
	} {
		check, comment := planWrite(tc.s)
		if (want{check, comment}) != tc.want {
			t.Errorf("%s: check %v, comment %v; want %+v", tc.name, check, comment, tc.want)
		}
	}
}

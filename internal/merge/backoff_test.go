package merge

import (
	"testing"
	"time"
)

// The wait before a refused release is tried again: the first, then
// doubling, never past maxRefusedRetry.
func TestNextWait(t *testing.T) {
	for _, tc := range []struct {
		prev, first, want time.Duration
	}{
		{0, 5 * time.Second, 5 * time.Second},
		{5 * time.Second, 5 * time.Second, 10 * time.Second},
		{40 * time.Second, 5 * time.Second, 80 * time.Second},
		{8 * time.Minute, 5 * time.Second, maxRefusedRetry},
		{maxRefusedRetry, 5 * time.Second, maxRefusedRetry},
		{0, time.Hour, maxRefusedRetry}, // a first wait past the cap is capped
	} {
		if got := nextWait(tc.prev, tc.first); got != tc.want {
			t.Errorf("nextWait(%s, %s) = %s; want %s", tc.prev, tc.first, got, tc.want)
		}
	}
}

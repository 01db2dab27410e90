package deploy

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if d, ok := retryAfter(http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, now); !ok || d != 90*time.Second {
		t.Errorf("HTTP-date Retry-After = %s, %v", d, ok)
	}
	if d, ok := retryAfter(http.Header{"Retry-After": {"99999999999999"}}, now); !ok || d <= 0 {
		t.Errorf("huge Retry-After = %s, %v; want a large positive wait", d, ok)
	}
}

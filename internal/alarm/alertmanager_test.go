package alarm

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/alarm/alarmtest"
	"github.com/shipbot/shipbot/internal/config"
)

// waitFiring polls until the check agrees with want: Alertmanager takes an
// alert in synchronously, but nothing in its API promises that, and
// Prometheus sees a change at its next scrape, so the test allows a short
// settling time instead of assuming.
func waitFiring(t *testing.T, c *Checker, a config.Alarm, want bool) Status {
	t.Helper()
	return waitFiringWithin(t, c, a, want, 10*time.Second)
}

func waitFiringWithin(t *testing.T, c *Checker, a config.Alarm, want bool, within time.Duration) Status {
	t.Helper()
	var st Status
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st = c.Firing(context.Background(), a); st.Firing == want && !st.Unknown {
			return st
		}
	}
	t.Fatalf("alarm never reached firing=%v within %s: %+v", want, within, st)
	return st
}

func TestRealAlertmanager(t *testing.T) {
	base := alarmtest.Start(t)
	c := &Checker{Timeout: 2 * time.Second}
	a := config.Alarm{
		Name: "prod-high-severity", Kind: config.AlarmAlertmanager, URL: base,
		Filter: []string{`severity="high"`, `service="api"`},
	}

	if st := c.Firing(context.Background(), a); st.Firing || st.Unknown {
		t.Fatalf("empty Alertmanager: %+v", st)
	}

	// Alerts that miss one matcher never fire the alarm.
	now := time.Now()
	alarmtest.PostAlert(t, base, map[string]string{"alertname": "WebDown", "severity": "high", "service": "web"}, now, now.Add(time.Hour))
	alarmtest.PostAlert(t, base, map[string]string{"alertname": "ApiSlow", "severity": "low", "service": "api"}, now, now.Add(time.Hour))

	started := now.Add(-time.Minute)
	matching := map[string]string{"alertname": "HighErrorRate", "severity": "high", "service": "api"}
	alarmtest.PostAlert(t, base, matching, started, now.Add(time.Hour))
	st := waitFiring(t, c, a, true)
	want := fmt.Sprintf(`alarm prod-high-severity is firing: HighErrorRate (matching %s)`, strings.Join(a.Filter, ", "))
	if st.Reason != want {
		t.Errorf("reason %q, want %q", st.Reason, want)
	}

	// The same alert resolved (endsAt in the past) stops it.
	alarmtest.PostAlert(t, base, matching, started, time.Now().Add(-time.Second))
	waitFiring(t, c, a, false)

	// The non-matching alerts are still active, which proves the filter,
	// not an empty Alertmanager, decided.
	all := config.Alarm{Name: "anything", Kind: config.AlarmAlertmanager, URL: base}
	if st := c.Firing(context.Background(), all); !st.Firing || !strings.Contains(st.Reason, "and 1 more") {
		t.Errorf("unfiltered alarm: %+v", st)
	}
}

package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// SHIPBOT_RETENTION: 14 days unless set; Go durations and days both work;
// anything else stops the service with a line naming the variable.
func TestRetention(t *testing.T) {
	s, err := ServerFromEnv(mapEnv(nil), files(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.Retention != 14*24*time.Hour {
		t.Errorf("default retention %v; want 14 days", s.Retention)
	}
	for v, want := range map[string]time.Duration{
		"14d": 14 * 24 * time.Hour, "1d": 24 * time.Hour, "36h": 36 * time.Hour, "1d12h": 36 * time.Hour,
		"90m": 90 * time.Minute, "365d": 365 * 24 * time.Hour,
	} {
		s, err := ServerFromEnv(mapEnv(map[string]string{EnvRetention: v}), files(nil))
		if err != nil {
			t.Errorf("%s=%s: %v", EnvRetention, v, err)
			continue
		}
		if s.Retention != want {
			t.Errorf("%s=%s: %v; want %v", EnvRetention, v, s.Retention, want)
		}
	}
	for _, v := range []string{"14", "two weeks", "14days", "1.5d", "d", "-1h", "0", "0d", "14d-1h", "1e3h"} {
		_, err := ServerFromEnv(mapEnv(map[string]string{EnvRetention: v}), files(nil))
		var ee *EnvError
		if !errors.As(err, &ee) || ee.Var != EnvRetention {
			t.Errorf("%s=%q: %v; want an error naming %s", EnvRetention, v, err, EnvRetention)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, EnvRetention+": ") || !strings.Contains(msg, "14d") {
			t.Errorf("%s=%q: %q; want the variable first and an example of a valid value", EnvRetention, v, msg)
		}
	}
}

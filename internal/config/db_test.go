package config

import (
	"strings"
	"testing"
)

func TestSHIPBOTDB(t *testing.T) {
	for _, tc := range []struct {
		db      string
		wantErr bool
	}{
		{"", false}, // the default
		{"/data/shipbot.db", false},
		{"postgres://shipbot:pw@db:5432/shipbot?sslmode=require", false},
		{"postgresql://shipbot@/shipbot?host=/var/run/postgresql", false},
		{"postgres://shipbot:p w@db/shipbot", true}, // a space must be escaped
		{"postgres://shipbot:pw@db:port/shipbot", true},
	} {
		s, err := ServerFromEnv(func(k string) string {
			if k == EnvDB {
				return tc.db
			}
			return ""
		}, nil)
		if (err != nil) != tc.wantErr {
			t.Errorf("SHIPBOT_DB=%q: err = %v; want error %v", tc.db, err, tc.wantErr)
			continue
		}
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, EnvDB) || strings.Contains(msg, "pw") || strings.Contains(msg, "p w") {
				t.Errorf("SHIPBOT_DB=%q: error %q; want it to name %s and not show the value", tc.db, msg, EnvDB)
			}
			continue
		}
		if want := orDefault(tc.db, DefaultDB); s.DB != want {
			t.Errorf("SHIPBOT_DB=%q: DB = %q; want %q", tc.db, s.DB, want)
		}
	}
}

package window

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, s string) Window {
	t.Helper()
	w, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return w
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical String()
		days string // open days, Sun first, as a 7-letter mask
	}{
		{"Mon-Thu 10:00-16:00 Asia/Seoul", "Mon-Thu 10:00-16:00 Asia/Seoul", ".XXXX.."},
		{"mon-fri 9:00-17:30 UTC", "Mon-Fri 09:00-17:30 UTC", ".XXXXX."},
		{"Mon,Wed,Fri 00:00-24:00 Europe/Berlin", "Mon,Wed,Fri 00:00-24:00 Europe/Berlin", ".X.X.X."},
		{"Mon-Wed,Fri 08:00-12:00 UTC", "Mon-Wed,Fri 08:00-12:00 UTC", ".XXX.X."},
		{"Fri-Mon 22:00-06:00 America/New_York", "Fri-Mon 22:00-06:00 America/New_York", "XX...XX"},
		{"Sat-Sun 10:00-11:00 UTC", "Sat-Sun 10:00-11:00 UTC", "X.....X"},
		{"daily 01:00-02:00 UTC", "daily 01:00-02:00 UTC", "XXXXXXX"},
		{"  DAILY   01:00-02:00   UTC ", "daily 01:00-02:00 UTC", "XXXXXXX"},
		{"Sun 23:00-00:00 UTC", "Sun 23:00-00:00 UTC", "X......"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w := mustParse(t, tt.in)
			if got := w.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			var mask strings.Builder
			for _, open := range w.days {
				if open {
					mask.WriteByte('X')
				} else {
					mask.WriteByte('.')
				}
			}
			if mask.String() != tt.days {
				t.Errorf("days = %s, want %s", mask.String(), tt.days)
			}
			again := mustParse(t, w.String())
			if !again.Equal(w) {
				t.Errorf("String() does not round-trip: %v vs %v", again, w)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Mon-Thu 25:00-16:00 Asia/Seoul", `window "Mon-Thu 25:00-16:00 Asia/Seoul": hour 25 out of range`},
		{"Mon-Thu 10:60-16:00 UTC", `minute 60 out of range`},
		{"Mon 24:00-02:00 UTC", `start 24:00 is the end of the day`},
		{"Mon 10:00-24:30 UTC", `time 24:30 is past the end of the day`},
		{"Mon 10:00-10:00 UTC", `start and end are both 10:00`},
		{"Mon 10-16 UTC", `time "10" must be HH:MM`},
		{"Mon 10:0-16:00 UTC", `time "10:0" must be HH:MM`},
		{"Mon 10:00 UTC", `time range "10:00" must be HH:MM-HH:MM`},
		{"Mon 1000:00-16:00 UTC", `time "1000:00" must be HH:MM`},
		{"Mon 10:00-16:00", `missing time zone`},
		{"10:00-16:00 UTC", `missing days`},
		{"Mon 10:00-16:00 Mars/Olympus", `unknown time zone "Mars/Olympus"`},
		{"Mon 10:00-16:00 Local", `not "Local"`},
		{"", `empty`},
		{"   ", `empty`},
		{"Mon 10:00-16:00 UTC extra", `want "DAYS HH:MM-HH:MM ZONE"`},
		{"Mo-Fr 10:00-16:00 UTC", `unknown day "Mo"`},
		{"Monday 10:00-16:00 UTC", `unknown day "Monday"`},
		{"Mon- 10:00-16:00 UTC", `missing day in range`},
		{"Mon,,Fri 10:00-16:00 UTC", `empty day in list`},
		{"Mon,Fri, 10:00-16:00 UTC", `empty day in list`},
		{"Mon-Mon 10:00-16:00 UTC", `starts and ends on the same day`},
		{"Mon-Wed,Tue 10:00-16:00 UTC", `day Tue given more than once`},
		{"Mon,mon 10:00-16:00 UTC", `day Mon given more than once`},
		{"daily,Mon 10:00-16:00 UTC", `unknown day "daily"`},
		{"* 10:00-16:00 UTC", `unknown day "*"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error containing %q", tt.in, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "window ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q should be one line starting with `window `", err)
			}
		})
	}
}

func TestContains(t *testing.T) {
	seoul := mustLoc(t, "Asia/Seoul")
	berlin := mustLoc(t, "Europe/Berlin")
	ny := mustLoc(t, "America/New_York")
	// 2024-06-03 is a Monday.
	tests := []struct {
		name   string
		window string
		at     time.Time
		want   bool
	}{
		{"start inclusive", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 3, 10, 0, 0, 0, seoul), true},
		{"just before start", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 3, 9, 59, 59, 999999999, seoul), false},
		{"end exclusive", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 3, 16, 0, 0, 0, seoul), false},
		{"just before end", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 3, 15, 59, 59, 999999999, seoul), true},
		{"other day", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 7, 12, 0, 0, 0, seoul), false},
		{"evaluated in the window's zone", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 3, 1, 0, 0, 0, time.UTC), true},
		{"UTC Sunday is Seoul Monday", "Mon 08:00-09:00 Asia/Seoul", time.Date(2024, 6, 2, 23, 30, 0, 0, time.UTC), true},
		{"whole day start", "Mon 00:00-24:00 UTC", time.Date(2024, 6, 3, 0, 0, 0, 0, time.UTC), true},
		{"whole day last instant", "Mon 00:00-24:00 UTC", time.Date(2024, 6, 3, 23, 59, 59, 999999999, time.UTC), true},
		{"whole day next midnight", "Mon 00:00-24:00 UTC", time.Date(2024, 6, 4, 0, 0, 0, 0, time.UTC), false},
		{"wrap range Sunday", "Fri-Mon 10:00-11:00 UTC", time.Date(2024, 6, 2, 10, 30, 0, 0, time.UTC), true},
		{"wrap range Monday", "Fri-Mon 10:00-11:00 UTC", time.Date(2024, 6, 3, 10, 30, 0, 0, time.UTC), true},
		{"wrap range Tuesday", "Fri-Mon 10:00-11:00 UTC", time.Date(2024, 6, 4, 10, 30, 0, 0, time.UTC), false},
		{"overnight evening", "Fri 22:00-02:00 UTC", time.Date(2024, 6, 7, 23, 0, 0, 0, time.UTC), true},
		{"overnight after midnight belongs to start day", "Fri 22:00-02:00 UTC", time.Date(2024, 6, 8, 1, 59, 0, 0, time.UTC), true},
		{"overnight end exclusive", "Fri 22:00-02:00 UTC", time.Date(2024, 6, 8, 2, 0, 0, 0, time.UTC), false},
		{"overnight not on the start day morning", "Fri 22:00-02:00 UTC", time.Date(2024, 6, 7, 1, 0, 0, 0, time.UTC), false},
		{"overnight Sat-Sun wraps week", "Sat-Sun 22:00-02:00 UTC", time.Date(2024, 6, 3, 1, 0, 0, 0, time.UTC), true},
		{"overnight to midnight", "Sun 23:00-00:00 UTC", time.Date(2024, 6, 2, 23, 59, 0, 0, time.UTC), true},
		{"overnight to midnight end", "Sun 23:00-00:00 UTC", time.Date(2024, 6, 3, 0, 0, 0, 0, time.UTC), false},
		// DST: 2024-03-31 Berlin 02:00 CET -> 03:00 CEST; 2024-10-27 03:00 CEST -> 02:00 CET.
		{"summer time wall clock", "Mon-Fri 09:00-17:00 Europe/Berlin", time.Date(2024, 7, 1, 7, 0, 0, 0, time.UTC), true},
		{"summer time before open", "Mon-Fri 09:00-17:00 Europe/Berlin", time.Date(2024, 7, 1, 6, 59, 0, 0, time.UTC), false},
		{"winter time wall clock", "Mon-Fri 09:00-17:00 Europe/Berlin", time.Date(2024, 1, 8, 8, 0, 0, 0, time.UTC), true},
		{"winter time before open", "Mon-Fri 09:00-17:00 Europe/Berlin", time.Date(2024, 1, 8, 7, 59, 0, 0, time.UTC), false},
		{"spring forward jump into window", "Sun 02:30-04:00 Europe/Berlin", time.Date(2024, 3, 31, 1, 0, 0, 0, time.UTC), true},
		{"spring forward before jump", "Sun 02:30-04:00 Europe/Berlin", time.Date(2024, 3, 31, 0, 59, 0, 0, time.UTC), false},
		{"fall back first 02:15", "Sun 02:00-02:30 Europe/Berlin", time.Date(2024, 10, 27, 0, 15, 0, 0, time.UTC), true},
		{"fall back between", "Sun 02:00-02:30 Europe/Berlin", time.Date(2024, 10, 27, 0, 45, 0, 0, time.UTC), false},
		{"fall back second 02:15", "Sun 02:00-02:30 Europe/Berlin", time.Date(2024, 10, 27, 1, 15, 0, 0, time.UTC), true},
		{"New York local time", "Mon 09:00-10:00 America/New_York", time.Date(2024, 6, 3, 9, 30, 0, 0, ny), true},
		{"Berlin input location irrelevant", "Mon 09:00-10:00 America/New_York", time.Date(2024, 6, 3, 15, 30, 0, 0, berlin), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustParse(t, tt.window)
			if got := w.Contains(tt.at); got != tt.want {
				t.Errorf("%q.Contains(%v) = %v, want %v", tt.window, tt.at, got, tt.want)
			}
		})
	}
}

func TestNextOpen(t *testing.T) {
	seoul := mustLoc(t, "Asia/Seoul")
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		window string
		at     time.Time
		want   time.Time
	}{
		{"open returns t", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 3, 12, 34, 56, 7, seoul), time.Date(2024, 6, 3, 12, 34, 56, 7, seoul)},
		{"later today", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 3, 8, 0, 0, 0, seoul), time.Date(2024, 6, 3, 10, 0, 0, 0, seoul)},
		{"at end goes to next day", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 3, 16, 0, 0, 0, seoul), time.Date(2024, 6, 4, 10, 0, 0, 0, seoul)},
		{"Thursday evening to Monday", "Mon-Thu 10:00-16:00 Asia/Seoul", time.Date(2024, 6, 6, 17, 0, 0, 0, seoul), time.Date(2024, 6, 10, 10, 0, 0, 0, seoul)},
		{"wrap range Tuesday to Friday", "Fri-Mon 10:00-11:00 UTC", utc(2024, 6, 4, 12, 0), utc(2024, 6, 7, 10, 0)},
		{"overnight before start", "Fri 22:00-02:00 UTC", utc(2024, 6, 8, 2, 0), utc(2024, 6, 14, 22, 0)},
		{"same weekday next week", "Mon 09:00-10:00 UTC", utc(2024, 6, 3, 10, 0), utc(2024, 6, 10, 9, 0)},
		// Europe/Berlin: 2024-03-31 01:00 UTC clocks jump 02:00 -> 03:00.
		{"spring forward start in gap opens at jump", "Sun 02:30-04:00 Europe/Berlin", utc(2024, 3, 30, 12, 0), utc(2024, 3, 31, 1, 0)},
		{"spring forward normal start", "Sun 09:00-10:00 Europe/Berlin", utc(2024, 3, 31, 0, 0), utc(2024, 3, 31, 7, 0)},
		{"spring forward window swallowed", "Sun 02:00-02:30 Europe/Berlin", utc(2024, 3, 30, 12, 0), utc(2024, 4, 7, 0, 0)},
		{"across spring forward to weekday", "Mon 09:00-10:00 Europe/Berlin", utc(2024, 3, 29, 12, 0), utc(2024, 4, 1, 7, 0)},
		// Europe/Berlin: 2024-10-27 01:00 UTC clocks go back 03:00 -> 02:00.
		{"fall back first occurrence", "Sun 02:00-02:30 Europe/Berlin", utc(2024, 10, 26, 12, 0), utc(2024, 10, 27, 0, 0)},
		{"fall back second occurrence", "Sun 02:00-02:30 Europe/Berlin", utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 0)},
		{"fall back after both", "Sun 02:00-02:30 Europe/Berlin", utc(2024, 10, 27, 1, 30), utc(2024, 11, 3, 1, 0)},
		{"across fall back to weekday", "Mon 09:00-10:00 Europe/Berlin", utc(2024, 10, 25, 12, 0), utc(2024, 10, 28, 8, 0)},
		// America/New_York: 2024-03-10 07:00 UTC 02:00 EST -> 03:00 EDT;
		// 2024-11-03 06:00 UTC 02:00 EDT -> 01:00 EST.
		{"NY spring forward day", "daily 02:30-03:30 America/New_York", utc(2024, 3, 10, 5, 0), utc(2024, 3, 10, 7, 0)},
		{"NY day after spring forward", "daily 02:30-03:30 America/New_York", utc(2024, 3, 10, 8, 0), utc(2024, 3, 11, 6, 30)},
		{"NY fall back first 01:30", "daily 01:30-01:45 America/New_York", utc(2024, 11, 3, 4, 0), utc(2024, 11, 3, 5, 30)},
		{"NY fall back second 01:30", "daily 01:30-01:45 America/New_York", utc(2024, 11, 3, 5, 50), utc(2024, 11, 3, 6, 30)},
		{"NY overnight across fall back", "Sat 23:00-01:00 America/New_York", utc(2024, 11, 2, 12, 0), utc(2024, 11, 3, 3, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustParse(t, tt.window)
			got := w.NextOpen(tt.at)
			if !got.Equal(tt.want) {
				t.Errorf("%q.NextOpen(%v) = %v, want %v", tt.window, tt.at, got.UTC(), tt.want.UTC())
			}
			if got.Location() != tt.at.Location() {
				t.Errorf("NextOpen returned location %v, want the input's %v", got.Location(), tt.at.Location())
			}
			if !w.Contains(got) {
				t.Errorf("window not open at NextOpen result %v", got)
			}
		})
	}
}

// TestNextOpenBruteForce checks NextOpen against minute-by-minute stepping
// around DST changes, where a closed-form answer is easiest to get wrong.
func TestNextOpenBruteForce(t *testing.T) {
	windows := []string{
		"Sun 02:30-04:00 Europe/Berlin",
		"Sun 02:00-02:30 Europe/Berlin",
		"Sat-Sun 23:30-02:15 Europe/Berlin",
		"daily 01:00-03:00 America/New_York",
		"Mon,Sun 01:59-02:01 America/New_York",
		"Fri-Mon 22:00-01:30 America/New_York",
		"daily 02:00-02:30 Australia/Lord_Howe", // 30-minute DST shift
	}
	starts := []time.Time{
		time.Date(2024, 3, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 10, 25, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 11, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 4, 5, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 10, 5, 0, 0, 0, 0, time.UTC),
	}
	for _, ws := range windows {
		w := mustParse(t, ws)
		for _, start := range starts {
			// Step through four days, checking NextOpen every 7 minutes
			// against the first open minute found by stepping.
			end := start.Add(4 * 24 * time.Hour)
			var firstOpen time.Time
			for at := end.Add(8 * 24 * time.Hour); !at.Before(start); at = at.Add(-time.Minute) {
				if w.Contains(at) {
					firstOpen = at
				}
				if at.Before(end) && at.Sub(start)%(7*time.Minute) == 0 {
					if got := w.NextOpen(at); !got.Equal(firstOpen) {
						t.Fatalf("%q.NextOpen(%v) = %v, want %v", ws, at, got.UTC(), firstOpen.UTC())
					}
				}
			}
		}
	}
}

func TestZeroWindow(t *testing.T) {
	var w Window
	now := time.Date(2024, 6, 3, 12, 0, 0, 0, time.UTC)
	if w.Contains(now) {
		t.Error("zero Window is open")
	}
	if got := w.NextOpen(now); !got.IsZero() {
		t.Errorf("zero Window NextOpen = %v, want zero", got)
	}
	if w.String() != "" {
		t.Errorf("zero Window String = %q", w.String())
	}
	if !w.Equal(Window{}) || w.Equal(mustParse(t, "daily 00:00-24:00 UTC")) {
		t.Error("zero Window Equal is wrong")
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"Mon-Wed 10:00-11:00 UTC", "Mon,Tue,Wed 10:00-11:00 UTC", true},
		{"Fri-Mon 10:00-11:00 UTC", "Sat,Sun,Fri,Mon 10:00-11:00 UTC", true},
		{"Mon 10:00-11:00 UTC", "Mon 10:00-11:00 Europe/Berlin", false},
		{"Mon 10:00-11:00 UTC", "Mon 10:00-11:01 UTC", false},
		{"Mon 10:00-11:00 UTC", "Tue 10:00-11:00 UTC", false},
	}
	for _, tt := range tests {
		if got := mustParse(t, tt.a).Equal(mustParse(t, tt.b)); got != tt.want {
			t.Errorf("%q.Equal(%q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestTextRoundTrip(t *testing.T) {
	type doc struct {
		W Window `json:"w"`
	}
	in := doc{W: mustParse(t, "mon-wed,fri 9:00-17:00 Europe/Berlin")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"w":"Mon-Wed,Fri 09:00-17:00 Europe/Berlin"}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !out.W.Equal(in.W) {
		t.Errorf("round trip: got %v, want %v", out.W, in.W)
	}
	if err := json.Unmarshal([]byte(`{"w":"Mon 25:00-26:00 UTC"}`), &out); err == nil || !strings.Contains(err.Error(), "hour 25 out of range") {
		t.Errorf("unmarshal of a bad window: err = %v", err)
	}
}

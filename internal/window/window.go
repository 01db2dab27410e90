// Package window parses and evaluates deploy windows such as
// "Mon-Thu 10:00-16:00 Asia/Seoul": the days of the week and the time of day
// in a named time zone during which a pipeline stage may start.
//
// # Syntax
//
//	DAYS START-END ZONE
//
// DAYS is a comma-separated list of three-letter day names (case-insensitive)
// and day ranges: "Mon-Fri", "Mon,Wed,Fri", "Mon-Wed,Fri". A range may wrap
// around the week: "Fri-Mon" is Friday, Saturday, Sunday and Monday. The word
// "daily" means every day. Days are required so that a window never silently
// means "always"; a day may be named only once.
//
// START-END is a time of day range "HH:MM-HH:MM" (24-hour clock, a one-digit
// hour is accepted). The start is inclusive and the end exclusive. "24:00" is
// allowed as an end, so "00:00-24:00" is the whole day. An end before the
// start makes an overnight window that belongs to its start day:
// "Fri 22:00-02:00" is open from Friday 22:00 until Saturday 02:00. Equal start
// and end are rejected because the window would be empty.
//
// ZONE is an IANA time zone name such as "UTC" or "Europe/Berlin" and is
// required: a window without a zone would depend on the server's clock
// settings. "Local" is rejected for the same reason.
//
// # Daylight saving time
//
// A window is defined on the wall clock of its zone. On the day the clocks go
// forward, a window starting inside the skipped hour opens when the clock
// jumps (for "Sun 02:30-04:00 Europe/Berlin", at 03:00 CEST); a window lying
// entirely inside the skipped hour does not open that day. On the day the
// clocks go back, a wall-clock time that occurs twice is open both times.
package window

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	// The container image is distroless/scratch without /usr/share/zoneinfo,
	// so embed the IANA database; without it every zone but UTC would fail to
	// load in production while tests pass on a developer machine.
	_ "time/tzdata"
)

// Window is a parsed deploy window. The zero Window is never open.
type Window struct {
	days  [7]bool // indexed by time.Weekday
	spec  string  // canonical spelling of the days, for String
	start time.Duration
	end   time.Duration // may be 24h; end < start means overnight
	loc   *time.Location
}

// ParseError reports why a window string is invalid.
type ParseError struct {
	Input string // the window as given
	Msg   string
	Err   error // underlying cause, if any
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("window %q: %s", e.Input, e.Msg)
}

func (e *ParseError) Unwrap() error { return e.Err }

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// Parse parses a window in the syntax described in the package documentation.
func Parse(s string) (Window, error) {
	fail := func(err error, format string, args ...any) (Window, error) {
		return Window{}, &ParseError{Input: s, Msg: fmt.Sprintf(format, args...), Err: err}
	}
	fields := strings.Fields(s)
	switch {
	case len(fields) == 0:
		return fail(nil, `empty; want "DAYS HH:MM-HH:MM ZONE", e.g. "Mon-Fri 09:00-17:00 UTC"`)
	case len(fields) == 2 && looksLikeTime(fields[0]):
		return fail(nil, `missing days before the time range (e.g. "Mon-Fri" or "daily")`)
	case len(fields) == 2 && looksLikeTime(fields[1]):
		return fail(nil, `missing time zone after the time range (e.g. "UTC" or "Europe/Berlin")`)
	case len(fields) != 3:
		return fail(nil, `want "DAYS HH:MM-HH:MM ZONE", e.g. "Mon-Fri 09:00-17:00 UTC"`)
	}

	var w Window
	var err error
	if w.days, w.spec, err = parseDays(fields[0]); err != nil {
		return fail(nil, "%s", err)
	}
	if w.start, w.end, err = parseTimes(fields[1]); err != nil {
		return fail(nil, "%s", err)
	}
	if fields[2] == "Local" {
		return fail(nil, `time zone must be an IANA name such as "UTC" or "Europe/Berlin", not "Local"`)
	}
	if w.loc, err = time.LoadLocation(fields[2]); err != nil {
		return fail(err, "unknown time zone %q", fields[2])
	}
	return w, nil
}

func looksLikeTime(f string) bool {
	return len(f) > 0 && f[0] >= '0' && f[0] <= '9' && strings.Contains(f, ":")
}

func parseDays(f string) (days [7]bool, spec string, err error) {
	if strings.EqualFold(f, "daily") {
		for i := range days {
			days[i] = true
		}
		return days, "daily", nil
	}
	items := strings.Split(f, ",")
	canon := make([]string, 0, len(items))
	for _, item := range items {
		if item == "" {
			return days, "", fmt.Errorf("empty day in list %q", f)
		}
		from, to, isRange := strings.Cut(item, "-")
		a, err := parseDay(from)
		if err != nil {
			return days, "", err
		}
		b := a
		if isRange {
			if b, err = parseDay(to); err != nil {
				return days, "", err
			}
			if a == b {
				// Ambiguous: one day or the whole week? Make the author say.
				return days, "", fmt.Errorf("day range %q starts and ends on the same day; write %s or daily", item, dayNames[a])
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			if days[d] {
				return days, "", fmt.Errorf("day %s given more than once", dayNames[d])
			}
			days[d] = true
			if d == b {
				break
			}
		}
		if isRange {
			canon = append(canon, dayNames[a]+"-"+dayNames[b])
		} else {
			canon = append(canon, dayNames[a])
		}
	}
	return days, strings.Join(canon, ","), nil
}

func parseDay(s string) (time.Weekday, error) {
	for i, n := range dayNames {
		if strings.EqualFold(s, n) {
			return time.Weekday(i), nil
		}
	}
	if s == "" {
		return 0, fmt.Errorf("missing day in range")
	}
	return 0, fmt.Errorf("unknown day %q (want Mon, Tue, Wed, Thu, Fri, Sat, Sun or daily)", s)
}

func parseTimes(f string) (start, end time.Duration, err error) {
	a, b, ok := strings.Cut(f, "-")
	if !ok {
		return 0, 0, fmt.Errorf("time range %q must be HH:MM-HH:MM", f)
	}
	if start, err = parseClock(a); err != nil {
		return 0, 0, err
	}
	if start == 24*time.Hour {
		return 0, 0, fmt.Errorf("start 24:00 is the end of the day; use 00:00")
	}
	if end, err = parseClock(b); err != nil {
		return 0, 0, err
	}
	if start == end {
		return 0, 0, fmt.Errorf("start and end are both %s; the window would be empty (use 00:00-24:00 for the whole day)", a)
	}
	return start, end, nil
}

// parseClock parses "HH:MM" (or "H:MM") into the offset from midnight.
func parseClock(s string) (time.Duration, error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 || !digits(hs) || !digits(ms) {
		return 0, fmt.Errorf("time %q must be HH:MM", s)
	}
	h, _ := strconv.Atoi(hs)
	m, _ := strconv.Atoi(ms)
	switch {
	case h > 24:
		return 0, fmt.Errorf("hour %d out of range", h)
	case m > 59:
		return 0, fmt.Errorf("minute %d out of range", m)
	case h == 24 && m != 0:
		return 0, fmt.Errorf("time %s is past the end of the day (24:00 is the latest)", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Location returns the window's time zone (nil for the zero Window).
func (w Window) Location() *time.Location { return w.loc }

// String returns the window in canonical form, e.g.
// "Mon-Thu 10:00-16:00 Asia/Seoul"; it parses back to an equal Window.
func (w Window) String() string {
	if w.loc == nil {
		return ""
	}
	return w.spec + " " + clock(w.start) + "-" + clock(w.end) + " " + w.loc.String()
}

func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// Equal reports whether w and o are open at exactly the same times, however
// their days were spelled ("Mon-Wed" equals "Mon,Tue,Wed"). go-cmp uses it.
func (w Window) Equal(o Window) bool {
	if w.loc == nil || o.loc == nil {
		return w.loc == nil && o.loc == nil
	}
	return w.days == o.days && w.start == o.start && w.end == o.end && w.loc.String() == o.loc.String()
}

// MarshalText implements encoding.TextMarshaler so a Window round-trips
// through JSON and YAML as its string form.
func (w Window) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler using Parse.
func (w *Window) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*w = p
	return nil
}

// Contains reports whether the window is open at t (start inclusive, end
// exclusive), judged by the wall clock of the window's zone.
func (w Window) Contains(t time.Time) bool {
	if w.loc == nil {
		return false
	}
	lt := t.In(w.loc)
	wd := lt.Weekday()
	h, m, s := lt.Clock()
	tod := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(lt.Nanosecond())
	if w.end > w.start {
		return w.days[wd] && tod >= w.start && tod < w.end
	}
	// Overnight: the part after midnight belongs to the previous day.
	return (w.days[wd] && tod >= w.start) || (w.days[(wd+6)%7] && tod < w.end)
}

// horizon bounds the search in NextOpen. Every valid window has at least one
// day a week, and a DST change can swallow at most one week's opening, so two
// weeks always contain an opening.
const (
	horizonDays = 15
	horizon     = horizonDays * 24 * time.Hour
)

// NextOpen returns t if the window is open at t, else the earliest instant
// after t at which it opens, in t's location. It returns the zero Time only
// for the zero Window.
func (w Window) NextOpen(t time.Time) time.Time {
	if w.loc == nil {
		return time.Time{}
	}
	if w.Contains(t) {
		return t
	}
	// Contains, a function of the wall clock, can only turn true where the
	// wall clock reaches the start time or jumps at a zone transition, so
	// the answer is the earliest such instant at which the window is open.
	var best time.Time
	consider := func(u time.Time) {
		if u.After(t) && w.Contains(u) && (best.IsZero() || u.Before(best)) {
			best = u
		}
	}
	for u := t; ; {
		_, next := u.In(w.loc).ZoneBounds()
		if next.IsZero() || next.Sub(t) > horizon {
			break
		}
		consider(next)
		u = next
	}
	lt := t.In(w.loc)
	y, m, d := lt.Date()
	for i := -1; i <= horizonDays; i++ {
		// A naive UTC value carries the wall-clock reading we look for.
		day := time.Date(y, m, d+i, 0, 0, 0, 0, time.UTC)
		if !w.days[day.Weekday()] {
			continue
		}
		for _, u := range wallInstants(day.Add(w.start), w.loc) {
			consider(u)
		}
		if !best.IsZero() && best.Before(day.Add(-26*time.Hour)) {
			break // offsets are within ±26h, so later days open later still
		}
	}
	if best.IsZero() {
		return best
	}
	return best.In(t.Location())
}

// wallInstants returns every instant at which the wall clock in loc reads the
// naive time (a UTC value standing for a wall-clock reading): none inside a
// skipped hour, two inside a repeated hour, otherwise one. time.Date alone
// cannot do this: it picks one of the two repeated instants arbitrarily.
func wallInstants(naive time.Time, loc *time.Location) []time.Time {
	var out []time.Time
	seen := map[int]bool{}
	// UTC offsets lie within ±26h, so every offset that can apply to this
	// reading is in effect somewhere in that span.
	hi := naive.Add(26 * time.Hour)
	for u := naive.Add(-26 * time.Hour); u.Before(hi); {
		lu := u.In(loc)
		_, off := lu.Zone()
		if !seen[off] {
			seen[off] = true
			c := naive.Add(-time.Duration(off) * time.Second).In(loc)
			if sameWall(c, naive) {
				out = append(out, c)
			}
		}
		_, next := lu.ZoneBounds()
		if next.IsZero() {
			break
		}
		u = next
	}
	return out
}

func sameWall(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	ah, ami, as := a.Clock()
	bh, bmi, bs := b.Clock()
	return ay == by && am == bm && ad == bd && ah == bh && ami == bmi && as == bs
}

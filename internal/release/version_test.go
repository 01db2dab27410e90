package release

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
)

func TestBumpString(t *testing.T) {
	for b, want := range map[Bump]string{None: "none", Patch: "patch", Minor: "minor", Major: "major", Bump(9): "Bump(9)"} {
		if got := b.String(); got != want {
			t.Errorf("Bump(%d).String() = %q, want %q", int(b), got, want)
		}
	}
}

func TestLatest(t *testing.T) {
	tests := []struct {
		name    string
		tags    []string
		prefix  string
		wantTag string // "" means none
		wantV   string
	}{
		{name: "no tags: first release", tags: nil, prefix: "v"},
		{name: "prefix v", tags: []string{"v1.2.3", "v1.2.4"}, prefix: "v", wantTag: "v1.2.4", wantV: "1.2.4"},
		{name: "pre-release ignored", tags: []string{"v1.2.3", "v1.3.0-rc.1"}, prefix: "v", wantTag: "v1.2.3", wantV: "1.2.3"},
		{name: "only a pre-release", tags: []string{"v1.2.3-rc.1"}, prefix: "v"},
		{name: "build metadata ignored", tags: []string{"v1.2.3", "v1.4.0+build.7"}, prefix: "v", wantTag: "v1.2.3", wantV: "1.2.3"},
		{name: "prefix-less tag ignored with prefix v", tags: []string{"1.2.3", "v0.9.0"}, prefix: "v", wantTag: "v0.9.0", wantV: "0.9.0"},
		{name: "prefixed tag ignored with empty prefix", tags: []string{"v2.0.0", "1.2.3"}, prefix: "", wantTag: "1.2.3", wantV: "1.2.3"},
		{name: "release- prefix", tags: []string{"release-1.2.3", "v9.9.9", "release-1.2.2"}, prefix: "release-", wantTag: "release-1.2.3", wantV: "1.2.3"},
		{name: "slash prefix", tags: []string{"api/v1.0.0", "web/v3.0.0"}, prefix: "api/v", wantTag: "api/v1.0.0", wantV: "1.0.0"},
		{name: "highest, not latest-created", tags: []string{"v1.10.0", "v1.9.0", "v1.2.0"}, prefix: "v", wantTag: "v1.10.0", wantV: "1.10.0"},
		{name: "foreign and malformed tags ignored", tags: []string{"latest", "v1", "v1.2", "v01.2.3", "v1.2.3.4", "vv1.0.0", "V1.0.0", "v 1.0.0", "v0.1.0"}, prefix: "v", wantTag: "v0.1.0", wantV: "0.1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, tag, ok := Latest(tt.tags, tt.prefix)
			if ok != (tt.wantTag != "") || tag != tt.wantTag {
				t.Fatalf("Latest() = %v, %q, %v; want tag %q", v, tag, ok, tt.wantTag)
			}
			if ok && v.String() != tt.wantV {
				t.Errorf("version = %s, want %s", v, tt.wantV)
			}
			if !ok && v != nil {
				t.Errorf("version = %v, want nil", v)
			}
		})
	}
}

func TestNext(t *testing.T) {
	initial := semver.MustParse("0.1.0")
	label := func(b Bump) Choice { return Choice{Bump: b, Explicit: true} }
	title := func(b Bump) Choice { return Choice{Bump: b} }

	tests := []struct {
		name    string
		latest  string // "" means no release tag yet
		initial *semver.Version
		choice  Choice
		want    string
		wantErr string
	}{
		{name: "first release is initial", choice: title(Minor), want: "0.1.0"},
		{name: "first release ignores a major bump", choice: label(Major), want: "0.1.0"},
		{name: "first release from a custom initial", initial: semver.MustParse("1.0.0"), choice: title(Patch), want: "1.0.0"},
		{name: "patch", latest: "1.4.2", choice: title(Patch), want: "1.4.3"},
		{name: "minor", latest: "1.4.2", choice: title(Minor), want: "1.5.0"},
		{name: "major", latest: "1.4.2", choice: title(Major), want: "2.0.0"},
		{name: "explicit major from 1.x", latest: "1.4.2", choice: label(Major), want: "2.0.0"},
		{name: "pre-1.0 breaking change bumps the minor", latest: "0.4.2", choice: title(Major), want: "0.5.0"},
		{name: "explicit major label leaves 0.x", latest: "0.4.2", choice: label(Major), want: "1.0.0"},
		{name: "pre-1.0 feature", latest: "0.4.2", choice: title(Minor), want: "0.5.0"},
		{name: "pre-1.0 fix", latest: "0.4.2", choice: title(Patch), want: "0.4.3"},
		{name: "0.0.x breaking change", latest: "0.0.3", choice: title(Major), want: "0.1.0"},
		{name: "none", latest: "1.4.2", choice: label(None), wantErr: ErrNoRelease.Error()},
		{name: "none on first release", choice: label(None), wantErr: ErrNoRelease.Error()},
		{name: "pre-release initial refused", initial: semver.MustParse("1.0.0-rc.1"), choice: title(Patch), wantErr: "must be plain"},
		{name: "unknown bump", latest: "1.0.0", choice: title(Bump(7)), wantErr: "unknown bump"},
		{name: "overflow", latest: "1.0.18446744073709551615", choice: title(Patch), wantErr: "cannot go higher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var latest *semver.Version
			if tt.latest != "" {
				latest = semver.MustParse(tt.latest)
			}
			init := tt.initial
			if init == nil {
				init = initial
			}
			got, err := Next(latest, latest != nil, init, tt.choice)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Next() = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Next() error: %v", err)
			}
			if got.String() != tt.want {
				t.Errorf("Next() = %s, want %s", got, tt.want)
			}
			if latest != nil && !got.GreaterThan(latest) {
				t.Errorf("Next() = %s is not above %s", got, latest)
			}
		})
	}
}

func TestNextErrors(t *testing.T) {
	if _, err := Next(nil, false, nil, Choice{Bump: Patch}); err == nil {
		t.Error("no initial version: want error")
	}
	if _, err := Next(nil, true, semver.MustParse("0.1.0"), Choice{Bump: Patch}); err == nil {
		t.Error("hasLatest with nil latest: want error")
	}
	if _, err := Next(semver.MustParse("1.0.0-rc.1"), true, nil, Choice{Bump: Patch}); err == nil {
		t.Error("pre-release latest: want error")
	}
	if _, err := Next(semver.New(math.MaxUint64, 0, 0, "", ""), true, nil, Choice{Bump: Major, Explicit: true}); err == nil {
		t.Error("major overflow: want error")
	}
	if _, err := Next(semver.MustParse("1.0.0"), true, nil, Choice{}); !errors.Is(err, ErrNoRelease) {
		t.Errorf("zero Choice: err = %v, want ErrNoRelease", err)
	}
}

func TestTag(t *testing.T) {
	for _, tt := range []struct{ prefix, v, want string }{
		{"v", "1.4.2", "v1.4.2"},
		{"", "1.4.2", "1.4.2"},
		{"release-", "0.1.0", "release-0.1.0"},
	} {
		if got := Tag(tt.prefix, semver.MustParse(tt.v)); got != tt.want {
			t.Errorf("Tag(%q, %s) = %q, want %q", tt.prefix, tt.v, got, tt.want)
		}
	}
}

// A tag written by Tag must be read back by Latest, or the next merge would
// start again from the same version.
func TestTagRoundTrip(t *testing.T) {
	for _, prefix := range []string{"v", "", "release-", "api/v"} {
		v := semver.MustParse("3.2.1")
		got, _, ok := Latest([]string{Tag(prefix, v)}, prefix)
		if !ok || !got.Equal(v) {
			t.Errorf("prefix %q: Latest(Tag()) = %v, %v", prefix, got, ok)
		}
	}
}

// The whole flow, as the shell will run it.
func TestFlow(t *testing.T) {
	tests := []struct {
		name   string
		tags   []string
		labels []string
		title  string
		body   string
		mode   string
		want   string
	}{
		{name: "first release", title: "feat: hello", mode: "conventional", want: "v0.1.0"},
		{name: "feature on 1.x", tags: []string{"v1.2.3", "v1.3.0-rc.1"}, title: "feat(api): widgets", mode: "conventional", want: "v1.3.0"},
		{name: "breaking on 0.x", tags: []string{"v0.4.2"}, title: "feat!: drop v1", mode: "conventional", want: "v0.5.0"},
		{name: "semver:major on 0.x", tags: []string{"v0.4.2"}, labels: []string{"semver:major"}, title: "feat!: drop v1", mode: "conventional", want: "v1.0.0"},
		{name: "breaking footer on 2.x", tags: []string{"v2.0.1"}, title: "refactor: config", body: "text\n\nBREAKING CHANGE: keys renamed", mode: "conventional", want: "v3.0.0"},
		{name: "patch mode", tags: []string{"v2.0.1"}, title: "feat: big", mode: "patch", want: "v2.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ChooseBump(tt.labels, tt.title, tt.body, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			latest, _, ok := Latest(tt.tags, "v")
			v, err := Next(latest, ok, semver.MustParse("0.1.0"), c)
			if err != nil {
				t.Fatal(err)
			}
			if got := Tag("v", v); got != tt.want {
				t.Errorf("tag = %s, want %s (%s)", got, tt.want, c.Reason)
			}
		})
	}
}

package release

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Bump is the size of a version step. The order matters: a larger Bump is a
// larger step.
type Bump int

const (
	None Bump = iota
	Patch
	Minor
	Major
)

func (b Bump) String() string {
	switch b {
	case None:
		return "none"
	case Patch:
		return "patch"
	case Minor:
		return "minor"
	case Major:
		return "major"
	}
	return fmt.Sprintf("Bump(%d)", int(b))
}

// ErrNoRelease is returned by [Next] for [None]: the merge (labelled
// semver:none) is to be merged without a release or rollout.
var ErrNoRelease = errors.New("no release: the bump is none")

// Latest returns the highest version among tags of exactly the form
// <prefix>MAJOR.MINOR.PATCH, and the tag it came from. Pre-releases, build
// metadata, tags without the prefix and anything else are ignored, so that a
// stray tag can never become the base of the next release. Highest, not
// newest: an old tag created late (a backport, a retag) must not send the
// version backwards. ok is false when no tag qualifies.
func Latest(tags []string, prefix string) (v *semver.Version, tag string, ok bool) {
	for _, t := range tags {
		rest, found := strings.CutPrefix(t, prefix)
		if !found {
			continue
		}
		cand, err := semver.StrictNewVersion(rest)
		if err != nil || !plain(cand) {
			continue
		}
		if v == nil || cand.GreaterThan(v) {
			v, tag = cand, t
		}
	}
	return v, tag, v != nil
}

// Next returns the version that follows latest for the given choice.
//
// The first release (hasLatest false) is exactly initial, whatever the bump:
// the configured starting point is a promise, not a base to step from.
// [None] returns [ErrNoRelease], also for the first release.
//
// Versions go up by exactly one step: patch 1.4.2 → 1.4.3, minor 1.4.2 →
// 1.5.0, major 1.4.2 → 2.0.0.
//
// Pre-1.0 rule: while the major version is 0, a breaking change bumps the
// minor version (0.4.2 → 0.5.0), the 0.x convention Cargo and the semver FAQ
// follow, so a project is not pushed to 1.0.0 by its first breaking change.
// Only an explicit semver:major label leaves 0.x (0.4.2 → 1.0.0). From 1.0.0
// on, a breaking change bumps the major version either way.
func Next(latest *semver.Version, hasLatest bool, initial *semver.Version, c Choice) (*semver.Version, error) {
	if c.Bump == None {
		return nil, ErrNoRelease
	}
	if !hasLatest {
		if initial == nil {
			return nil, errors.New("no release tag exists and no initial version is configured")
		}
		if !plain(initial) {
			// A first tag with a pre-release would not count as a release
			// tag afterwards, and the next merge would cut initial again.
			return nil, fmt.Errorf("initial version %s must be plain MAJOR.MINOR.PATCH", initial)
		}
		return semver.New(initial.Major(), initial.Minor(), initial.Patch(), "", ""), nil
	}
	if latest == nil {
		return nil, errors.New("hasLatest is set but latest is nil")
	}
	if !plain(latest) {
		return nil, fmt.Errorf("latest version %s is not plain MAJOR.MINOR.PATCH", latest)
	}

	major, minor, patch := latest.Major(), latest.Minor(), latest.Patch()
	b := c.Bump
	if b == Major && major == 0 && !c.Explicit {
		b = Minor
	}
	switch b {
	case Patch:
		if patch == math.MaxUint64 {
			return nil, fmt.Errorf("patch version of %s cannot go higher", latest)
		}
		return semver.New(major, minor, patch+1, "", ""), nil
	case Minor:
		if minor == math.MaxUint64 {
			return nil, fmt.Errorf("minor version of %s cannot go higher", latest)
		}
		return semver.New(major, minor+1, 0, "", ""), nil
	case Major:
		if major == math.MaxUint64 {
			return nil, fmt.Errorf("major version of %s cannot go higher", latest)
		}
		return semver.New(major+1, 0, 0, "", ""), nil
	}
	return nil, fmt.Errorf("unknown bump %v", c.Bump)
}

// Tag is the tag name for v, e.g. Tag("v", 1.4.2) = "v1.4.2".
func Tag(prefix string, v *semver.Version) string {
	return prefix + v.String()
}

func plain(v *semver.Version) bool {
	return v.Prerelease() == "" && v.Metadata() == ""
}

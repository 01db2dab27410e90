package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"

	"github.com/shipbot/shipbot/internal/window"
)

// RepoFile is where a repository's configuration lives, read at the merge
// commit.
const RepoFile = ".github/shipbot.yml"

// Enumerated values of the repository configuration.
const (
	ConcurrencyQueue  = "queue"  // every version deploys, in order
	ConcurrencyLatest = "latest" // a waiting older run is superseded by a newer one

	BumpConventional = "conventional" // from the PR title: feat → minor, fix → patch, ! → major
	BumpPatch        = "patch"        // always a patch release
)

// Defaults and limits of the repository configuration.
const (
	DefaultStageTimeout = 30 * time.Minute
	DefaultTagPrefix    = "v"
	DefaultInitial      = "0.1.0"
	DefaultApprovals    = 1
	MaxApprovals        = 10
	// MaxStages bounds the work (deployments, triggers, API calls) one
	// untrusted file can ask for.
	MaxStages = 50
	// maxLabelLen is GitHub's limit on label names.
	maxLabelLen = 50
)

// Repo is a repository's `.github/shipbot.yml` with every default applied.
type Repo struct {
	Version     int
	Pipeline    string // the unit of serialization
	Concurrency string // ConcurrencyQueue or ConcurrencyLatest
	Release     Release
	Gate        Gate
	Stages      []Stage // in rollout order; empty means release only
}

// Release says how versions are cut.
type Release struct {
	TagPrefix string          // may be empty
	Initial   *semver.Version // first version when no tag exists; no pre-release or metadata
	Bump      string          // BumpConventional or BumpPatch
}

// Gate says what a merge needs before anything is released.
type Gate struct {
	Approvals              int // by others than the author, 0..MaxApprovals
	RequireProtectedBranch bool
	RequireChecks          bool
}

// Stage is one step of the rollout.
type Stage struct {
	Name    string
	Target  string        // a target of the server-side targets file
	Bake    time.Duration // alarm watch after success; 0 means none
	Timeout time.Duration // DefaultStageTimeout unless set; see EffectiveTimeout
	// TimeoutSet records that the file gave a timeout, so that it wins over
	// the target's default timeout while an unset one does not.
	TimeoutSet bool
	Window     *window.Window // nil means any time
	Alarms     []string       // alarm names of the targets file
	Rollback   bool
	SkipLabel  string // the label that skips this stage; never empty after ParseRepo
	Line       int    // line of the stage in the file, for error reports
}

// DefaultRepo returns the configuration that a minimal file (just
// `version: 1`) yields: no stages, so a merge is gated and released but
// deployed nowhere.
//
// Product decision: a repository WITHOUT `.github/shipbot.yml` is not opted
// in. Callers treat a missing file as "do nothing, report neutral" and must
// not fall back to DefaultRepo; installing the App on an organisation must
// never start cutting releases in every repository.
func DefaultRepo(repoName string) Repo {
	return Repo{
		Version:     1,
		Pipeline:    repoName,
		Concurrency: ConcurrencyQueue,
		Release: Release{
			TagPrefix: DefaultTagPrefix,
			Initial:   semver.MustParse(DefaultInitial),
			Bump:      BumpConventional,
		},
		Gate: Gate{
			Approvals:              DefaultApprovals,
			RequireProtectedBranch: true,
			RequireChecks:          true,
		},
	}
}

// Stage returns the stage with the given name.
func (r Repo) Stage(name string) (Stage, bool) {
	for _, s := range r.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return Stage{}, false
}

// SkipLabelName returns the label that skips this stage: SkipLabel, or
// `no-deploy-to-<name>` for a Stage not built by ParseRepo.
func (s Stage) SkipLabelName() string {
	if s.SkipLabel != "" {
		return s.SkipLabel
	}
	return DefaultSkipLabel(s.Name)
}

// DefaultSkipLabel is the label that skips stage name unless the stage sets
// skip_label.
func DefaultSkipLabel(name string) string { return "no-deploy-to-" + name }

// EffectiveTimeout is how long the stage waits for its outcome: the stage's
// own timeout if the file set one, else the target's default, else
// DefaultStageTimeout.
func (s Stage) EffectiveTimeout(t Target) time.Duration {
	switch {
	case s.TimeoutSet && s.Timeout > 0:
		return s.Timeout
	case t.Timeout > 0:
		return t.Timeout
	case s.Timeout > 0:
		return s.Timeout
	default:
		return DefaultStageTimeout
	}
}

var stageNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ParseRepo parses and validates a repository configuration. file names it
// in errors; repoName is the default pipeline. Unknown keys are errors, and
// every problem is reported: the error is an ErrorList of *Error, one per
// problem, each with line and column. On error the returned Repo is zero so
// that nothing acts on a half-valid configuration.
func ParseRepo(file string, data []byte, repoName string) (Repo, error) {
	d := &decoder{file: file}
	root := d.document(data)
	if root == nil {
		return Repo{}, d.errs.err()
	}
	r := DefaultRepo(repoName)
	m, _ := d.mapping(root, "", "version", "pipeline", "concurrency", "release", "gate", "stages")

	if e, ok := m["version"]; !ok {
		d.errorAt(root, "version", "required; add `version: 1`")
	} else if v, ok := d.integer(e.val, "version", "this shipbot reads version 1"); ok {
		if v != 1 {
			d.errorAt(e.val, "version", "unsupported version %d (this shipbot reads version 1)", v)
		}
		r.Version = v
	}
	if e, ok := m["pipeline"]; ok {
		if s, ok := d.str(e.val, "pipeline"); ok {
			if s == "" || strings.IndexFunc(s, unicode.IsSpace) >= 0 || len(s) > 100 {
				d.errorAt(e.val, "pipeline", "must be 1 to 100 characters without spaces, got %q", s)
			}
			r.Pipeline = s
		}
	}
	if e, ok := m["concurrency"]; ok {
		r.Concurrency = d.enum(e.val, "concurrency", r.Concurrency, ConcurrencyQueue, ConcurrencyLatest)
	}
	if e, ok := m["release"]; ok {
		d.release(e.val, &r.Release)
	}
	if e, ok := m["gate"]; ok {
		d.gate(e.val, &r.Gate)
	}
	if e, ok := m["stages"]; ok {
		r.Stages = d.stages(e.val)
	}
	if err := d.errs.err(); err != nil {
		return Repo{}, err
	}
	return r, nil
}

// enum returns the scalar at n if it is one of allowed, else reports it and
// returns def.
func (d *decoder) enum(n *yaml.Node, path, def string, allowed ...string) string {
	s, ok := d.str(n, path)
	if !ok {
		return def
	}
	if !slices.Contains(allowed, s) {
		d.errorAt(n, path, "must be %s, got %q", orList(allowed), s)
		return def
	}
	return s
}

func orList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	if len(q) <= 2 {
		return strings.Join(q, " or ")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func (d *decoder) release(n *yaml.Node, rel *Release) {
	m, _ := d.mapping(n, "release", "tag_prefix", "initial", "bump")
	if e, ok := m["tag_prefix"]; ok {
		if s, ok := d.str(e.val, "release.tag_prefix"); ok {
			if why := badTagPrefix(s); why != "" {
				d.errorAt(e.val, "release.tag_prefix", "%s, got %q", why, s)
			}
			rel.TagPrefix = s
		}
	}
	if e, ok := m["initial"]; ok {
		if s, ok := d.str(e.val, "release.initial"); ok {
			v, err := semver.StrictNewVersion(s)
			switch {
			case err != nil && strings.HasPrefix(s, "v"):
				d.errorAt(e.val, "release.initial", "must be a version like 0.1.0 without the tag prefix, got %q", s)
			case err != nil:
				d.errorAt(e.val, "release.initial", "must be a version like 0.1.0 (MAJOR.MINOR.PATCH), got %q", s)
			case v.Prerelease() != "" || v.Metadata() != "":
				// Only plain MAJOR.MINOR.PATCH tags count as releases, so a
				// pre-release initial version would never be seen again.
				d.errorAt(e.val, "release.initial", "must be MAJOR.MINOR.PATCH without pre-release or build metadata, got %q", s)
			default:
				rel.Initial = v
			}
		}
	}
	if e, ok := m["bump"]; ok {
		rel.Bump = d.enum(e.val, "release.bump", rel.Bump, BumpConventional, BumpPatch)
	}
}

// badTagPrefix says why s cannot start a git tag name, or "" if it can.
func badTagPrefix(s string) string {
	switch {
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "must not contain whitespace"
	case strings.HasPrefix(s, "/"):
		return "must not start with /"
	case strings.ContainsAny(s, `~^:?*[\`) || strings.Contains(s, "..") || strings.Contains(s, "@{") || strings.Contains(s, "//"):
		return `must be valid in a git tag name (no ~ ^ : ? * [ \ .. @{ //)`
	case len(s) > 100:
		return "must be at most 100 characters"
	}
	return ""
}

func (d *decoder) gate(n *yaml.Node, g *Gate) {
	m, _ := d.mapping(n, "gate", "approvals", "require_protected_branch", "require_checks")
	if e, ok := m["approvals"]; ok {
		if v, ok := d.integer(e.val, "gate.approvals", fmt.Sprintf("must be between 0 and %d", MaxApprovals)); ok {
			if v < 0 || v > MaxApprovals {
				d.errorAt(e.val, "gate.approvals", "must be between 0 and %d, got %d", MaxApprovals, v)
			}
			g.Approvals = v
		}
	}
	if e, ok := m["require_protected_branch"]; ok {
		if v, ok := d.boolean(e.val, "gate.require_protected_branch"); ok {
			g.RequireProtectedBranch = v
		}
	}
	if e, ok := m["require_checks"]; ok {
		if v, ok := d.boolean(e.val, "gate.require_checks"); ok {
			g.RequireChecks = v
		}
	}
}

func (d *decoder) stages(n *yaml.Node) []Stage {
	items, ok := d.list(n, "stages")
	if !ok {
		return nil
	}
	if len(items) > MaxStages {
		d.errorAt(n, "stages", "%d stages; at most %d are allowed", len(items), MaxStages)
	}
	out := make([]Stage, 0, len(items))
	first := map[string]int{} // stage name → line of its first use
	for i, item := range items {
		path := index("stages", i)
		s, ok := d.stage(item, path)
		if !ok {
			continue
		}
		if s.Name != "" {
			if line, dup := first[s.Name]; dup {
				d.errorAt(item, path+".name", "duplicate stage name %q (first at line %d)", s.Name, line)
			} else {
				first[s.Name] = item.Line
			}
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) stage(n *yaml.Node, path string) (Stage, bool) {
	m, ok := d.mapping(n, path, "name", "target", "bake", "timeout", "window", "alarms", "rollback", "skip_label")
	if !ok {
		return Stage{}, false
	}
	s := Stage{Timeout: DefaultStageTimeout, Line: n.Line}

	if e, ok := m["name"]; !ok {
		d.errorAt(n, path+".name", "required")
	} else if v, ok := d.str(e.val, path+".name"); ok {
		if !stageNameRE.MatchString(v) {
			d.errorAt(e.val, path+".name", "must match %s (lower case letters, digits, _ and -), got %q", stageNameRE, v)
		}
		s.Name = v
	}
	if e, ok := m["target"]; !ok {
		d.errorAt(n, path+".target", "required")
	} else if v, ok := d.str(e.val, path+".target"); ok {
		if v == "" {
			d.errorAt(e.val, path+".target", "must not be empty")
		}
		s.Target = v
	}
	if e, ok := m["bake"]; ok {
		s.Bake, _ = d.duration(e.val, path+".bake", true)
	}
	if e, ok := m["timeout"]; ok {
		if v, ok := d.duration(e.val, path+".timeout", false); ok {
			s.Timeout, s.TimeoutSet = v, true
		}
	}
	if e, ok := m["window"]; ok {
		if v, ok := d.str(e.val, path+".window"); ok {
			w, err := window.Parse(v)
			if err != nil {
				d.errorAt(e.val, path+".window", "%s", err)
			} else {
				s.Window = &w
			}
		}
	}
	if e, ok := m["alarms"]; ok {
		s.Alarms = d.names(e.val, path+".alarms", "alarm")
	}
	if e, ok := m["rollback"]; ok {
		s.Rollback, _ = d.boolean(e.val, path+".rollback")
	}
	if e, ok := m["skip_label"]; ok {
		if v, ok := d.str(e.val, path+".skip_label"); ok {
			switch {
			case strings.TrimSpace(v) == "":
				d.errorAt(e.val, path+".skip_label", "must not be empty")
			case strings.TrimSpace(v) != v:
				d.errorAt(e.val, path+".skip_label", "must not start or end with spaces, got %q", v)
			case len(v) > maxLabelLen:
				d.errorAt(e.val, path+".skip_label", "longer than GitHub's %d-character label limit", maxLabelLen)
			}
			s.SkipLabel = v
		}
	} else if s.Name != "" {
		s.SkipLabel = DefaultSkipLabel(s.Name)
		if len(s.SkipLabel) > maxLabelLen {
			d.errorAt(m["name"].val, path+".name", "too long: the skip label %q exceeds GitHub's %d-character label limit; shorten the name or set skip_label", s.SkipLabel, maxLabelLen)
		}
	}
	return s, true
}

// names reads a list of unique, non-empty strings.
func (d *decoder) names(n *yaml.Node, path, what string) []string {
	items, ok := d.list(n, path)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(items))
	first := map[string]int{}
	for i, item := range items {
		p := index(path, i)
		v, ok := d.str(item, p)
		if !ok {
			continue
		}
		switch line, dup := first[v]; {
		case strings.TrimSpace(v) == "":
			d.errorAt(item, p, "%s name must not be empty", what)
		case dup:
			d.errorAt(item, p, "duplicate %s %q (first at line %d)", what, v, line)
		default:
			first[v] = item.Line
			out = append(out, v)
		}
	}
	return out
}

package config

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/Masterminds/semver/v3"
	"github.com/bmatcuk/doublestar/v4"
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
	// MaxPipelines bounds the pipelines of the `pipelines:` form; MaxStages
	// bounds their stages together.
	MaxPipelines = 20
	// MaxWaveTargets bounds the targets of one wave stage (`targets:`).
	MaxWaveTargets = 20
	// MaxApprovers bounds a stage's approvers list.
	MaxApprovers = 50
	// MaxGlobs bounds a pipeline's paths and its ignore list (each): every
	// file a merge changed is matched against them.
	MaxGlobs = 30
	// maxGlobLen and maxGlobExpansions bound what matching one pattern
	// costs: its length, and how many patterns its {a,b} groups stand for
	// (each is tried).
	maxGlobLen        = 256
	maxGlobExpansions = 64
	// maxPipelineName bounds a pipeline's name.
	maxPipelineName = 100
	// maxLabelLen is GitHub's limit on label names.
	maxLabelLen = 50
)

// Repo is a repository's `.github/shipbot.yml` with every default applied.
//
// A file has one of two forms. The single-pipeline form (top-level
// `pipeline`, `concurrency`, `release`, `stages`) is one pipeline that every
// merge runs. The `pipelines:` form (Multi) lists several pipelines, each
// with its own paths, release and stages, for a monorepo. Both yield
// Pipelines, so that code that runs a pipeline serves both.
type Repo struct {
	Version   int
	Gate      Gate       // shared by every pipeline
	Pipelines []Pipeline // in file order; exactly one in the single-pipeline form
	Multi     bool       // the file uses the `pipelines:` form
}

// Pipeline is one unit of serialization: its own version sequence, release
// and stages.
type Pipeline struct {
	Name        string
	Paths       []string // doublestar globs of the files that run it; nil: every merge
	Ignore      []string // globs of the files that never run it
	Concurrency string   // ConcurrencyQueue or ConcurrencyLatest
	Release     Release
	Stages      []Stage // in rollout order; empty means release only
	Line        int     // line of the pipeline in a `pipelines:` list; 0 in the single-pipeline form
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
	Name string
	// Target is the target of the server-side targets file that a
	// single-target stage (`target:`) deploys to; empty for a wave.
	Target string
	// Targets are a wave's targets (`targets:`), all triggered at once, in
	// file order; nil for a single-target stage. See Wave and TargetNames.
	Targets []string
	Bake    time.Duration // alarm watch after success; 0 means none
	Timeout time.Duration // DefaultStageTimeout unless set; see EffectiveTimeout
	// TimeoutSet records that the file gave a timeout, so that it wins over
	// the target's default timeout while an unset one does not.
	TimeoutSet bool
	Window     *window.Window // nil means any time
	Alarms     []string       // alarm names of the targets file
	Rollback   bool
	SkipLabel  string // the label that skips this stage; never empty after ParseRepo
	// Approval makes a run wait before the stage until someone approves it
	// (`/shipbot approve <stage>`).
	Approval bool
	// Approvers may approve or reject the stage: GitHub logins and
	// "@org/team-slug" teams, as written. Empty: anyone with at least
	// maintain on the repository. Only set when Approval is.
	Approvers []string
	Line      int // line of the stage in the file, for error reports
}

// Wave reports whether the stage lists several targets (`targets:`) rather
// than one (`target:`). A wave of one target is still a wave.
func (s Stage) Wave() bool { return s.Targets != nil }

// TargetNames returns the stage's targets: Targets for a wave, else Target
// alone.
func (s Stage) TargetNames() []string {
	if s.Wave() {
		return s.Targets
	}
	return []string{s.Target}
}

// DefaultRepo returns the configuration that a minimal file (just
// `version: 1`) yields: one pipeline named repoName without stages, so a
// merge is gated and released but deployed nowhere.
//
// Product decision: a repository WITHOUT `.github/shipbot.yml` is not opted
// in. Callers treat a missing file as "do nothing, report neutral" and must
// not fall back to DefaultRepo; installing the App on an organisation must
// never start cutting releases in every repository.
func DefaultRepo(repoName string) Repo {
	return Repo{
		Version:   1,
		Gate:      defaultGate(),
		Pipelines: []Pipeline{defaultPipeline(repoName, DefaultTagPrefix)},
	}
}

func defaultGate() Gate {
	return Gate{
		Approvals:              DefaultApprovals,
		RequireProtectedBranch: true,
		RequireChecks:          true,
	}
}

func defaultPipeline(name, tagPrefix string) Pipeline {
	return Pipeline{
		Name:        name,
		Concurrency: ConcurrencyQueue,
		Release: Release{
			TagPrefix: tagPrefix,
			Initial:   semver.MustParse(DefaultInitial),
			Bump:      BumpConventional,
		},
	}
}

// MultiTagPrefix is a pipeline's tag prefix in the `pipelines:` form unless
// its release sets tag_prefix: "<name>/v", as in api/v1.4.2.
func MultiTagPrefix(pipeline string) string { return pipeline + "/v" }

// Pipeline returns the pipeline with the given name.
func (r Repo) Pipeline(name string) (Pipeline, bool) {
	for _, p := range r.Pipelines {
		if p.Name == name {
			return p, true
		}
	}
	return Pipeline{}, false
}

// Stage returns the pipeline's stage with the given name.
func (p Pipeline) Stage(name string) (Stage, bool) {
	for _, s := range p.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return Stage{}, false
}

// Affects reports whether a merge that changed files runs the pipeline:
// some file matches Paths (any file, when Paths is nil) and no pattern of
// Ignore. A pipeline without Paths runs on every merge, including one that
// changed no file, unless every file it changed is ignored. Paths are
// relative to the repository root, separated by '/', as GitHub lists them.
func (p Pipeline) Affects(files []string) bool {
	if p.Paths == nil && len(files) == 0 {
		return true
	}
	for _, f := range files {
		if (p.Paths == nil || matchAny(p.Paths, f)) && !matchAny(p.Ignore, f) {
			return true
		}
	}
	return false
}

// matchAny reports whether name matches one of patterns, which ParseRepo
// validated (an invalid pattern, from a Pipeline built by hand, matches
// nothing).
func matchAny(patterns []string, name string) bool {
	for _, pat := range patterns {
		if ok, _ := doublestar.Match(pat, name); ok {
			return true
		}
	}
	return false
}

// Affected returns the pipelines that a merge changing files runs, in file
// order. complete is false when GitHub could not list every file the merge
// changed; then every pipeline runs, since none can be ruled out.
func (r Repo) Affected(files []string, complete bool) []Pipeline {
	var out []Pipeline
	for _, p := range r.Pipelines {
		if !complete || p.Affects(files) {
			out = append(out, p)
		}
	}
	return out
}

// SkipLabels returns the labels that skip stage s of pipeline p:
// s.SkipLabelName() (its skip_label, or no-deploy-to-<stage>, which skips the
// stage in every pipeline that has it) and, in the `pipelines:` form,
// no-deploy-to-<pipeline>/<stage>, which skips it in p only.
func (r Repo) SkipLabels(p Pipeline, s Stage) []string {
	out := []string{s.SkipLabelName()}
	if r.Multi {
		if q := DefaultSkipLabel(p.Name + "/" + s.Name); q != out[0] {
			out = append(out, q)
		}
	}
	return out
}

// StageRef is how GitHub and commands name stage s of pipeline p: in the
// `pipelines:` form "<pipeline>/<stage>" (a Deployments environment,
// `/shipbot approve api/prod`), else "<stage>".
func (r Repo) StageRef(p Pipeline, s Stage) string {
	if r.Multi {
		return p.Name + "/" + s.Name
	}
	return s.Name
}

// EnvironmentName is the GitHub Deployments environment of target of stage s
// of pipeline p: StageRef, followed by "/<target>" when s is a wave.
func (r Repo) EnvironmentName(p Pipeline, s Stage, target string) string {
	if s.Wave() {
		return r.StageRef(p, s) + "/" + target
	}
	return r.StageRef(p, s)
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
// in errors; repoName is the pipeline's name in the single-pipeline form
// unless the file sets `pipeline`. Unknown keys are errors, and every
// problem is reported: the error is an ErrorList of *Error, one per problem,
// each with line and column. On error the returned Repo is zero so that
// nothing acts on a half-valid configuration.
func ParseRepo(file string, data []byte, repoName string) (Repo, error) {
	d := &decoder{file: file}
	root := d.document(data)
	if root == nil {
		return Repo{}, d.errs.err()
	}
	r := Repo{Version: 1, Gate: defaultGate()}
	m, _ := d.mapping(root, "", "version", "pipeline", "concurrency", "release", "gate", "stages", "pipelines")

	if e, ok := m["version"]; !ok {
		d.errorAt(root, "version", "required; add `version: 1`")
	} else if v, ok := d.integer(e.val, "version", "this shipbot reads version 1"); ok {
		if v != 1 {
			d.errorAt(e.val, "version", "unsupported version %d (this shipbot reads version 1)", v)
		}
		r.Version = v
	}
	if e, ok := m["gate"]; ok {
		d.gate(e.val, &r.Gate)
	}
	if e, ok := m["pipelines"]; ok {
		r.Multi = true
		for _, k := range singleKeys {
			if s, ok := m[k]; ok {
				d.errorAt(s.key, k, "belongs to the single-pipeline form, but this file uses `pipelines:` (line %d); a file has one form or the other: set it in each pipeline instead", e.key.Line)
			}
		}
		r.Pipelines = d.pipelines(e.val)
	} else {
		p := defaultPipeline(repoName, DefaultTagPrefix)
		if e, ok := m["pipeline"]; ok {
			if s, ok := d.pipelineName(e.val, "pipeline", false); ok {
				p.Name = s
			}
		}
		d.pipelineKeys(m, "", &p)
		r.Pipelines = []Pipeline{p}
	}
	if err := d.errs.err(); err != nil {
		return Repo{}, err
	}
	return r, nil
}

// singleKeys are the top-level keys of the single-pipeline form, which a
// file with `pipelines:` must not have.
var singleKeys = []string{"pipeline", "concurrency", "release", "stages"}

// pipelineName reads a pipeline's name: 1 to 100 characters without spaces,
// and, in the `pipelines:` form (multi), without '/', which separates it from
// a stage's name in "<pipeline>/<stage>".
func (d *decoder) pipelineName(n *yaml.Node, path string, multi bool) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	switch {
	case s == "" || strings.IndexFunc(s, unicode.IsSpace) >= 0 || len(s) > maxPipelineName:
		d.errorAt(n, path, "must be 1 to %d characters without spaces, got %q", maxPipelineName, s)
		return s, false
	case multi && strings.Contains(s, "/"):
		d.errorAt(n, path, "must not contain /, which separates a pipeline from its stage (as in api/prod), got %q", s)
		return s, false
	}
	return s, true
}

// pipelineKeys reads the keys that both forms give a pipeline (concurrency,
// release, stages) from m into p; prefix is the pipeline's path, "" for the
// single-pipeline form. It returns the node of release.tag_prefix, nil when
// the file does not set it.
func (d *decoder) pipelineKeys(m map[string]entry, prefix string, p *Pipeline) (tagPrefix *yaml.Node) {
	if e, ok := m["concurrency"]; ok {
		p.Concurrency = d.enum(e.val, join(prefix, "concurrency"), p.Concurrency, ConcurrencyQueue, ConcurrencyLatest)
	}
	if e, ok := m["release"]; ok {
		tagPrefix = d.release(e.val, join(prefix, "release"), &p.Release)
	}
	if e, ok := m["stages"]; ok {
		p.Stages = d.stages(e.val, join(prefix, "stages"))
	}
	return tagPrefix
}

// pipelines reads the `pipelines:` list.
func (d *decoder) pipelines(n *yaml.Node) []Pipeline {
	items, ok := d.list(n, "pipelines")
	if !ok {
		return nil
	}
	switch {
	case len(items) == 0:
		d.errorAt(n, "pipelines", "must list at least one pipeline")
	case len(items) > MaxPipelines:
		d.errorAt(n, "pipelines", "%d pipelines; at most %d are allowed", len(items), MaxPipelines)
	}
	out := make([]Pipeline, 0, len(items))
	names := map[string]int{} // pipeline name → line of its first use
	type use struct {
		name string
		line int
	}
	prefixes := map[string]use{} // tag prefix → the pipeline that first used it
	stages := 0
	for i, item := range items {
		path := index("pipelines", i)
		m, ok := d.mapping(item, path, "name", "paths", "ignore", "concurrency", "release", "stages")
		if !ok {
			continue
		}
		p := defaultPipeline("", "")
		p.Line = item.Line
		var nameNode *yaml.Node
		nameOK := false
		if e, ok := m["name"]; !ok {
			d.errorAt(item, path+".name", "required")
		} else {
			nameNode = e.val
			p.Name, nameOK = d.pipelineName(e.val, path+".name", true)
			if nameOK {
				if line, dup := names[p.Name]; dup {
					d.errorAt(e.val, path+".name", "duplicate pipeline name %q (first at line %d)", p.Name, line)
					nameOK = false
				} else {
					names[p.Name] = e.val.Line
				}
			}
			p.Release.TagPrefix = MultiTagPrefix(p.Name)
		}
		if e, ok := m["paths"]; ok {
			p.Paths = d.globs(e.val, path+".paths", false)
		}
		if e, ok := m["ignore"]; ok {
			p.Ignore = d.globs(e.val, path+".ignore", true)
		}
		tp := d.pipelineKeys(m, path, &p)
		if tp == nil && nameOK {
			// The default prefix comes from the name, which may hold what a
			// tag name cannot.
			if why := badTagPrefix(p.Release.TagPrefix); why != "" {
				d.errorAt(nameNode, path+".name", "makes the default tag prefix %q, which %s; rename the pipeline or set release.tag_prefix", p.Release.TagPrefix, why)
				nameOK = false
			}
		}
		// Two pipelines cutting versions under one prefix would read each
		// other's tags as their own.
		if at := cmp.Or(tp, nameNode); at != nil && (tp != nil || nameOK) {
			if first, dup := prefixes[p.Release.TagPrefix]; dup {
				d.errorAt(at, path+".release.tag_prefix", "tag prefix %q is also pipeline %s's (line %d); each pipeline needs its own version sequence", p.Release.TagPrefix, first.name, first.line)
			} else {
				prefixes[p.Release.TagPrefix] = use{p.Name, item.Line}
			}
		}
		stages += len(p.Stages)
		out = append(out, p)
	}
	if stages > MaxStages {
		d.errorAt(n, "pipelines", "%d stages in all; at most %d are allowed", stages, MaxStages)
	}
	return out
}

// globs reads a list of doublestar patterns (paths or ignore), relative to
// the repository root. An empty list is an error unless allowEmpty.
func (d *decoder) globs(n *yaml.Node, path string, allowEmpty bool) []string {
	items, ok := d.list(n, path)
	if !ok {
		return nil
	}
	switch {
	case len(items) == 0 && !allowEmpty:
		d.errorAt(n, path, "must list at least one pattern; leave paths out to run the pipeline on every merge")
	case len(items) > MaxGlobs:
		d.errorAt(n, path, "%d patterns; at most %d are allowed", len(items), MaxGlobs)
	}
	return d.distinct(items, path, "pattern", d.str, nil, func(_ *yaml.Node, v string) string {
		switch {
		case v == "":
			return "pattern must not be empty"
		case len(v) > maxGlobLen:
			return fmt.Sprintf("pattern is %d characters; at most %d are allowed", len(v), maxGlobLen)
		case strings.HasPrefix(v, "/") || strings.HasPrefix(v, "./"):
			return fmt.Sprintf("patterns are relative to the repository root, without a leading / or ./, got %q", v)
		case !doublestar.ValidatePattern(v):
			return fmt.Sprintf("invalid glob %q: an unclosed [ or {, an empty [], or a trailing \\", v)
		case expansions(v) > maxGlobExpansions:
			return fmt.Sprintf("the {a,b} groups of %q make more than %d patterns; use fewer groups or list patterns separately", v, maxGlobExpansions)
		}
		return ""
	})
}

// expansions counts the patterns that the {a,b} alternatives of a valid
// glob stand for (each group multiplies), saturating above
// maxGlobExpansions. Matching tries them all, so it is what a pattern costs.
func expansions(p string) int {
	n, _ := expandSeq(p, 0, false)
	return n
}

// expandSeq counts a sequence from p[i:], up to the ',' or '}' that ends it
// when nested, and returns where it stopped.
func expandSeq(p string, i int, nested bool) (count, next int) {
	count = 1
	for i < len(p) {
		switch p[i] {
		case '\\':
			i += 2
			continue
		case '[': // a class: '{', ',' and '}' in it are literal
			for i++; i < len(p) && p[i] != ']'; i++ {
				if p[i] == '\\' {
					i++
				}
			}
		case '{':
			var alt int
			alt, i = expandAlt(p, i+1)
			count = min(count*alt, maxGlobExpansions+1)
			continue
		case ',', '}':
			if nested {
				return count, i
			}
		}
		i++
	}
	return count, i
}

// expandAlt counts the alternatives of a group whose '{' is just before
// p[i], and returns the index after its '}'.
func expandAlt(p string, i int) (count, next int) {
	for {
		c, j := expandSeq(p, i, true)
		count = min(count+c, maxGlobExpansions+1)
		if j >= len(p) || p[j] == '}' {
			return count, j + 1
		}
		i = j + 1
	}
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

// release reads a release section at path into rel and returns the node of
// its tag_prefix, nil when it has none.
func (d *decoder) release(n *yaml.Node, path string, rel *Release) (tagPrefix *yaml.Node) {
	m, _ := d.mapping(n, path, "tag_prefix", "initial", "bump")
	if e, ok := m["tag_prefix"]; ok {
		tagPrefix = e.val
		if s, ok := d.str(e.val, path+".tag_prefix"); ok {
			if why := badTagPrefix(s); why != "" {
				d.errorAt(e.val, path+".tag_prefix", "%s, got %q", why, s)
			}
			rel.TagPrefix = s
		}
	}
	if e, ok := m["initial"]; ok {
		if s, ok := d.str(e.val, path+".initial"); ok {
			v, err := semver.StrictNewVersion(s)
			switch {
			case err != nil && strings.HasPrefix(s, "v"):
				d.errorAt(e.val, path+".initial", "must be a version like 0.1.0 without the tag prefix, got %q", s)
			case err != nil:
				d.errorAt(e.val, path+".initial", "must be a version like 0.1.0 (MAJOR.MINOR.PATCH), got %q", s)
			case v.Prerelease() != "" || v.Metadata() != "":
				// Only plain MAJOR.MINOR.PATCH tags count as releases, so a
				// pre-release initial version would never be seen again.
				d.errorAt(e.val, path+".initial", "must be MAJOR.MINOR.PATCH without pre-release or build metadata, got %q", s)
			default:
				rel.Initial = v
			}
		}
	}
	if e, ok := m["bump"]; ok {
		rel.Bump = d.enum(e.val, path+".bump", rel.Bump, BumpConventional, BumpPatch)
	}
	return tagPrefix
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

// stages reads a list of stages at path ("stages" or
// "pipelines[i].stages").
func (d *decoder) stages(n *yaml.Node, path string) []Stage {
	items, ok := d.list(n, path)
	if !ok {
		return nil
	}
	if len(items) > MaxStages {
		d.errorAt(n, path, "%d stages; at most %d are allowed", len(items), MaxStages)
	}
	out := make([]Stage, 0, len(items))
	first := map[string]int{} // stage name → line of its first use
	for i, item := range items {
		p := index(path, i)
		s, ok := d.stage(item, p)
		if !ok {
			continue
		}
		if s.Name != "" {
			if line, dup := first[s.Name]; dup {
				d.errorAt(item, p+".name", "duplicate stage name %q (first at line %d)", s.Name, line)
			} else {
				first[s.Name] = item.Line
			}
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) stage(n *yaml.Node, path string) (Stage, bool) {
	m, ok := d.mapping(n, path, "name", "target", "targets", "bake", "timeout", "window", "alarms", "rollback", "skip_label", "approval", "approvers")
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
	one, oneOK := m["target"]
	wave, waveOK := m["targets"]
	switch {
	case oneOK && waveOK:
		d.errorAt(wave.key, path+".targets", "a stage has either target (one) or targets (a wave), not both")
	case oneOK:
		if v, ok := d.str(one.val, path+".target"); ok {
			if v == "" {
				d.errorAt(one.val, path+".target", "must not be empty")
			}
			s.Target = v
		}
	case waveOK:
		s.Targets = d.names(wave.val, path+".targets", "target")
		if s.Targets == nil {
			s.Targets = []string{} // still a wave, if an invalid one
		}
		if items := wave.val.Content; wave.val.Kind == yaml.SequenceNode {
			switch {
			case len(items) == 0:
				d.errorAt(wave.val, path+".targets", "must list at least one target")
			case len(items) > MaxWaveTargets:
				d.errorAt(wave.val, path+".targets", "%d targets; at most %d are allowed in one stage", len(items), MaxWaveTargets)
			}
		}
	default:
		d.errorAt(n, path+".target", "required (or targets: [a, b] for a wave)")
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
	if e, ok := m["approval"]; ok {
		s.Approval, _ = d.boolean(e.val, path+".approval")
	}
	if e, ok := m["approvers"]; ok {
		if !s.Approval {
			d.errorAt(e.key, path+".approvers", "approvers needs approval: true")
		}
		s.Approvers = d.approvers(e.val, path+".approvers")
	}
	return s, true
}

var (
	// loginRE is a GitHub login: letters, digits and single hyphens, not at
	// either end.
	loginRE = regexp.MustCompile(`^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$`)
	// teamSlugRE is the slug of a GitHub team, as in @acme/release-managers.
	teamSlugRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
)

// GitHub's limits on logins (users and organisations) and team slugs.
const (
	maxLoginLen    = 39
	maxTeamSlugLen = 100
)

// approvers reads a stage's approvers: GitHub logins and "@org/team-slug"
// teams, distinct (GitHub compares them case-insensitively).
func (d *decoder) approvers(n *yaml.Node, path string) []string {
	items, ok := d.list(n, path)
	if !ok {
		return nil
	}
	switch {
	case len(items) == 0:
		d.errorAt(n, path, "must list at least one user or team; leave approvers out to let anyone with maintain approve")
	case len(items) > MaxApprovers:
		d.errorAt(n, path, "%d approvers; at most %d are allowed (name a team instead)", len(items), MaxApprovers)
	}
	return d.distinct(items, path, "approver", d.str, strings.ToLower, func(_ *yaml.Node, v string) string {
		if !validApprover(v) {
			return fmt.Sprintf("must be a GitHub login (letters, digits and single hyphens, at most %d characters) or a team as @org/team-slug, got %q", maxLoginLen, v)
		}
		return ""
	})
}

// validApprover reports whether s is a GitHub login or "@org/team-slug".
func validApprover(s string) bool {
	login := func(s string) bool { return len(s) <= maxLoginLen && loginRE.MatchString(s) }
	team, ok := strings.CutPrefix(s, "@")
	if !ok {
		return login(s)
	}
	org, slug, ok := strings.Cut(team, "/")
	return ok && login(org) && len(slug) <= maxTeamSlugLen && teamSlugRE.MatchString(slug)
}

// names reads a list of unique, non-empty strings.
func (d *decoder) names(n *yaml.Node, path, what string) []string {
	items, ok := d.list(n, path)
	if !ok {
		return nil
	}
	return d.distinct(items, path, what, d.str, nil, func(_ *yaml.Node, v string) string {
		if strings.TrimSpace(v) == "" {
			return what + " name must not be empty"
		}
		return ""
	})
}

// distinct reads a list's strings (with str), each kept once: problem
// says what is wrong with an item's value ("" when nothing), and a value whose key
// (key(v), or v when key is nil) came before is an error naming the line
// of its first use. An item str cannot read is left out (str has said
// why, or why not yet).
func (d *decoder) distinct(items []*yaml.Node, path, what string, str func(*yaml.Node, string) (string, bool),
	key func(string) string, problem func(item *yaml.Node, v string) string) []string {
	out := make([]string, 0, len(items))
	first := map[string]int{}
	for i, item := range items {
		p := index(path, i)
		v, ok := str(item, p)
		if !ok {
			continue
		}
		k := v
		if key != nil {
			k = key(v)
		}
		line, dup := first[k]
		switch msg := problem(item, v); {
		case msg != "":
			d.errorAt(item, p, "%s", msg)
		case dup:
			d.errorAt(item, p, "duplicate %s %q (first at line %d)", what, v, line)
		default:
			first[k] = item.Line
			out = append(out, v)
		}
	}
	return out
}

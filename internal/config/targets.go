package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Alarm kinds.
const (
	AlarmAlertmanager = "alertmanager" // firing = any active alert matching the filter
	AlarmHTTP         = "http"         // GET returns JSON {"firing": bool}
	// AlarmPrometheus fires while the instant query returns a non-empty
	// vector or a non-zero scalar, as an alerting rule does.
	AlarmPrometheus = "prometheus"
)

// alarmKinds are the alarm kinds, in the order errors list them.
var alarmKinds = []string{AlarmAlertmanager, AlarmHTTP, AlarmPrometheus}

// Errors that Targets.Lookup wraps, for callers that must tell a refused
// merge (unknown target, repository not allowed) from a failed stage (an
// environment variable missing on the server).
var (
	ErrUnknownTarget   = errors.New("unknown target")
	ErrRepoNotAllowed  = errors.New("repository not allowed")
	ErrUnresolvedValue = errors.New("environment variable not set")
)

// Targets is the server-side targets file (SHIPBOT_TARGETS_FILE): where each
// stage deploys, with the secrets that the repositories never see.
type Targets struct {
	Targets map[string]Target // by name; never nil after ParseTargets
	Alarms  map[string]Alarm  // by name; never nil after ParseTargets
	// Warnings are what the operator should fix although the file is
	// usable: a ${VAR} that is unset (every reference, with its position)
	// and a URL that points at a link-local or cloud metadata address.
	// In file order; nil when there are none.
	Warnings []Warning
}

// Target is one deploy destination. String values have had ${VAR} expanded.
type Target struct {
	Name string
	// Kind names the target's kind, one of the Kinds given to ParseTargets
	// (internal/deploy's drivers): "spinnaker", "webhook", …
	Kind          string
	URL           string // trigger URL, for the kinds that take one
	Constraints   map[string]string
	SigningSecret string
	Repos         []string // owner/name allowed to use the target; empty allows none
	// Settings are the kind's own keys as its TargetKind read them (for
	// spinnaker, gate_url and application); nil when there are none.
	Settings any
	Timeout  time.Duration
	// Unresolved lists environment variables referenced but not set; the
	// target cannot be used until they are (see Err).
	Unresolved []string
	Line       int

	// urlVars are the values of the ${VAR}s in URL and in the URLs of the
	// kind's own keys: whatever an operator keeps in the environment is a
	// secret, wherever in the URL it goes (a path token, a query value, a
	// host).
	urlVars []string
	// kindURLs are the URLs the kind read for its Settings (Section.URL),
	// whose credentials are secrets as URL's are.
	kindURLs []string
	// fileSecrets is every secret of the targets file this target was read
	// from (Targets.Secrets), for KnownSecrets.
	fileSecrets []string
}

// Alarm is one alarm source. String values have had ${VAR} expanded.
type Alarm struct {
	Name string
	Kind string // AlarmAlertmanager, AlarmHTTP or AlarmPrometheus
	// URL is the Alertmanager or Prometheus base URL (a route prefix
	// included; shipbot appends the API path), or the http endpoint.
	URL    string
	Filter []string // alertmanager matchers such as `severity="high"`
	// Query is a prometheus alarm's PromQL expression. Like Filter it is a
	// setting, not a secret: reasons quote it.
	Query      string
	Unresolved []string // as for Target
	Line       int

	urlVars []string // as for Target
}

// reservedFields are the trigger payload's own fields; a constraint with one
// of these names would overwrite it.
var reservedFields = []string{
	"repository", "sha", "version", "tag", "stage", "pull_request",
	"run_id", "attempt", "callback_url", "rollback", "target", "pipeline",
}

var (
	targetNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	repoRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$`)
	matcherRE    = regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|!=|=)\s*(\S.*)$`)
)

// ParseTargets parses and validates the targets file. Keys are strict and
// every problem is reported as an ErrorList, as for ParseRepo; the service
// refuses to start on any. kinds are the kinds of target it may name; each
// reads and checks its own keys. ${VAR} in a string value is read through getenv;
// $$ is a literal $. A variable that is not set is not an error here: the
// target or alarm records it in Unresolved, its value is not validated, and
// only the stages that use it fail (see Target.Err), so one missing secret
// does not stop every other pipeline. Such references, and URLs that point
// at cloud metadata services, are returned in Targets.Warnings.
func ParseTargets(file string, data []byte, getenv func(string) (string, bool), kinds Kinds) (Targets, error) {
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	d := &decoder{file: file}
	out := Targets{Targets: map[string]Target{}, Alarms: map[string]Alarm{}}
	root := d.document(data)
	if root == nil {
		return Targets{}, d.errs.err()
	}
	m, _ := d.mapping(root, "", "targets", "alarms")
	if e, ok := m["targets"]; ok {
		es, _ := d.entries(e.val, "targets")
		for _, te := range es {
			if t, ok := d.target(te, getenv, kinds); ok {
				out.Targets[t.Name] = t
			}
		}
	}
	if e, ok := m["alarms"]; ok {
		es, _ := d.entries(e.val, "alarms")
		for _, ae := range es {
			if a, ok := d.alarm(ae, getenv); ok {
				out.Alarms[a.Name] = a
			}
		}
	}
	if err := d.errs.err(); err != nil {
		return Targets{}, err
	}
	sort.SliceStable(d.warns, func(i, j int) bool {
		if d.warns[i].Line != d.warns[j].Line {
			return d.warns[i].Line < d.warns[j].Line
		}
		return d.warns[i].Column < d.warns[j].Column
	})
	out.Warnings = d.warns
	out.shareSecrets()
	return out, nil
}

// targetsKeyRE finds a top-level "targets:" key in text that may not parse.
var targetsKeyRE = regexp.MustCompile(`(?m)^["']?targets["']?[ \t]*:`)

// IsTargetsFile reports whether data is meant as a targets file rather
// than a repository's configuration: it has a top-level `targets:` key,
// which a repository configuration never has. It looks at the text, so
// that a targets file with a syntax error is still recognised and its
// errors come from the right parser.
func IsTargetsFile(data []byte) bool {
	return targetsKeyRE.Match(data)
}

// expander reads string values with ${VAR} expansion, collecting the names
// of unset variables.
type expander struct {
	d          *decoder
	getenv     func(string) (string, bool)
	unresolved []string
	// consequence completes the warning about an unset variable: what
	// stops working until it is set.
	consequence string
}

// str returns the expanded value; resolved is false when it referenced an
// unset variable, in which case the caller must not validate it.
func (x *expander) str(n *yaml.Node, path string) (v string, resolved, ok bool) {
	raw, ok := x.d.str(n, path)
	if !ok {
		return "", false, false
	}
	v, missing, err := expand(raw, x.getenv)
	if err != nil {
		x.d.errorAt(n, path, "%s", err)
		return "", false, false
	}
	for _, name := range missing {
		if !slices.Contains(x.unresolved, name) {
			x.unresolved = append(x.unresolved, name)
		}
		x.d.warnAt(n, path, "${%s} is not set in the environment (or is empty); %s", name, x.consequence)
	}
	return v, len(missing) == 0, true
}

// url reads an absolute http(s) URL; ok is false when it is not one, or
// refers to an unset variable. Errors quote the text as written in the
// file, never the expanded value, which may carry a secret.
func (x *expander) url(n *yaml.Node, path string) (v string, ok bool) {
	v, resolved, ok := x.str(n, path)
	if !ok || !resolved {
		return v, false
	}
	if why := badURL(v); why != "" {
		note := ""
		if strings.Contains(n.Value, "$") {
			note = " (after expanding variables)"
		}
		x.d.errorAt(n, path, "must be an absolute http(s) URL%s, got %q: %s", note, n.Value, why)
		return v, false
	}
	if host, why := metadataHost(v); why != "" {
		// A warning, not an error: nothing forbids a deploy system on such
		// an address, but a mistyped or hostile one would have shipbot
		// POST secrets to the machine's cloud credentials service.
		shown := fmt.Sprintf("%q", host)
		if strings.Contains(n.Value, "$") {
			shown = "a host (after expanding variables)" // the host may come from a secret
		}
		x.d.warnAt(n, path, "points at %s, %s; cloud instance metadata and credentials are served there, so a request to it can leak them", shown, why)
	}
	return v, true
}

// metadataHost reports whether URL s points at an address where clouds
// serve instance metadata: link-local addresses (169.254.0.0/16, AWS, GCP,
// Azure, OpenStack; fe80::/10), AWS's IPv6 fd00:ec2::254, Alibaba's
// 100.100.100.200, and GCP's metadata host names. It returns the host and
// what kind of address it is, or "" when it is none of these.
func metadataHost(s string) (host, why string) {
	u, err := url.Parse(s)
	if err != nil {
		return "", ""
	}
	host = u.Hostname()
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "metadata.google.internal" || name == "metadata" {
		return host, "a cloud metadata service's host name"
	}
	addr, _, _ := strings.Cut(host, "%") // an IPv6 zone, as in fe80::1%eth0
	ip := net.ParseIP(addr)
	switch {
	case ip == nil:
		return "", ""
	case ip.IsLinkLocalUnicast():
		return host, "a link-local address"
	case ip.Equal(net.ParseIP("100.100.100.200")), ip.Equal(net.ParseIP("fd00:ec2::254")):
		return host, "a cloud metadata service's address"
	}
	return "", ""
}

func badURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL
		}
		return err.Error()
	case u.Scheme != "http" && u.Scheme != "https":
		return "scheme must be http or https"
	case u.Host == "":
		return "missing host"
	case u.Fragment != "":
		return "must not have a #fragment"
	}
	return ""
}

// target reads one target's entry: the keys every kind has here, the
// kind's own through its TargetKind.
func (d *decoder) target(te entry, getenv func(string) (string, bool), kinds Kinds) (Target, bool) {
	name := te.key.Value
	path := "targets." + name
	if !targetNameRE.MatchString(name) {
		d.errorAt(te.key, "targets", "invalid target name %q: must match %s", name, targetNameRE)
	}
	m, ok := d.mapping(te.val, path, kinds.keys()...)
	if !ok {
		return Target{}, false
	}
	x := &expander{d: d, getenv: getenv,
		consequence: fmt.Sprintf("stages that use target %q fail until it is set", name)}
	t := Target{Name: name, Line: te.key.Line}

	var kind TargetKind // nil while unknown: then no key is another kind's
	if e, ok := m["kind"]; !ok {
		d.errorAt(te.val, path+".kind", "required: %s", orList(kinds.names()))
	} else if v, resolved, ok := x.str(e.val, path+".kind"); ok {
		t.Kind = v
		if resolved {
			if kind = kinds.lookup(v); kind == nil {
				d.errorAt(e.val, path+".kind", "must be %s, got %q", orList(kinds.names()), v)
			}
		}
	}
	// usable reports whether the entry sets key and its kind, when known,
	// uses it; a key the kind does not use is an error, since the target
	// would silently not do what it says.
	usable := func(key string) bool {
		e, ok := m[key]
		if !ok {
			return false
		}
		if kind != nil && !slices.Contains(kind.Keys(), key) {
			d.errorAt(e.key, path+"."+key, "not used by kind %q (only by %s)", t.Kind, orList(kinds.using(key)))
			return false
		}
		return true
	}

	if _, ok := m["url"]; ok {
		if usable("url") {
			t.URL, _ = x.url(m["url"].val, path+".url")
			t.urlVars = append(t.urlVars, varValues(m["url"].val.Value, getenv)...)
		}
	} else if kind != nil && slices.Contains(kind.Keys(), "url") {
		d.errorAt(te.val, path+".url", "required for kind %q", t.Kind)
	}
	if e, ok := m["constraints"]; ok {
		t.Constraints = d.constraints(x, e.val, path+".constraints")
	}
	if usable("signing_secret") {
		e := m["signing_secret"]
		if v, resolved, ok := x.str(e.val, path+".signing_secret"); ok {
			if resolved && v == "" {
				d.errorAt(e.val, path+".signing_secret", "must not be empty (leave it out for unsigned requests)")
			}
			t.SigningSecret = v
		}
	}
	if e, ok := m["repos"]; ok {
		t.Repos = d.repos(x, e.val, path+".repos")
	}
	// The kind reads its own keys. Another kind's are reported, and, while
	// the kind is unknown (an error already, or an unset variable that
	// makes the target unusable), nobody's are read.
	own := map[string]entry{}
	for key, e := range m {
		if slices.Contains(commonHead, key) || slices.Contains(commonTail, key) {
			continue
		}
		if usable(key) {
			own[key] = e
		}
	}
	if kind != nil {
		t.Settings = kind.ReadSettings(&Section{d: d, x: x, m: own, node: te.val, path: path, t: &t, getenv: getenv})
	}
	if e, ok := m["timeout"]; ok {
		if raw, resolved, ok := x.str(e.val, path+".timeout"); ok && resolved {
			v, err := parseDuration(raw, e.val.Value)
			switch {
			case err != nil:
				d.errorAt(e.val, path+".timeout", "%s", err)
			case v <= 0:
				d.errorAt(e.val, path+".timeout", "must be positive, got %q", e.val.Value)
			default:
				t.Timeout = v
			}
		}
	}
	sort.Strings(x.unresolved)
	t.Unresolved = x.unresolved
	return t, true
}

func (d *decoder) constraints(x *expander, n *yaml.Node, path string) map[string]string {
	es, ok := d.entries(n, path)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(es))
	for _, e := range es {
		key := e.key.Value
		p := path + "." + key
		switch {
		case strings.TrimSpace(key) == "":
			d.errorAt(e.key, path, "constraint names must not be empty")
			continue
		case slices.Contains(reservedFields, key):
			d.errorAt(e.key, p, "%q is a field of the trigger payload and cannot be a constraint", key)
			continue
		}
		v, resolved, ok := x.str(e.val, p)
		if !ok {
			continue
		}
		if resolved && v == "" {
			d.errorAt(e.val, p, "must not be empty")
		}
		out[key] = v
	}
	return out
}

func (d *decoder) repos(x *expander, n *yaml.Node, path string) []string {
	items, ok := d.list(n, path)
	if !ok {
		return nil
	}
	// A value with an unset ${VAR} is left out: the expander has warned.
	str := func(n *yaml.Node, path string) (string, bool) {
		v, resolved, ok := x.str(n, path)
		return v, ok && resolved
	}
	return d.distinct(items, path, "repository", str, strings.ToLower, func(item *yaml.Node, v string) string {
		if !repoRE.MatchString(v) {
			return fmt.Sprintf("must be owner/name, got %q", item.Value) // as written: no expanded secret
		}
		return ""
	})
}

func (d *decoder) alarm(ae entry, getenv func(string) (string, bool)) (Alarm, bool) {
	name := ae.key.Value
	path := "alarms." + name
	if !targetNameRE.MatchString(name) {
		d.errorAt(ae.key, "alarms", "invalid alarm name %q: must match %s", name, targetNameRE)
	}
	m, ok := d.mapping(ae.val, path, "kind", "url", "filter", "query")
	if !ok {
		return Alarm{}, false
	}
	x := &expander{d: d, getenv: getenv,
		consequence: fmt.Sprintf("alarm %q cannot be read until it is set, and an alarm that cannot be read counts as firing", name)}
	a := Alarm{Name: name, Line: ae.key.Line}
	kindKnown := false
	if e, ok := m["kind"]; !ok {
		d.errorAt(ae.val, path+".kind", "required: %s", orList(alarmKinds))
	} else if v, resolved, ok := x.str(e.val, path+".kind"); ok {
		a.Kind = v
		if resolved {
			if kindKnown = slices.Contains(alarmKinds, v); !kindKnown {
				d.errorAt(e.val, path+".kind", "must be %s, got %q", orList(alarmKinds), v)
			}
		}
	}
	if e, ok := m["url"]; !ok {
		d.errorAt(ae.val, path+".url", "required")
	} else {
		var valid bool
		a.URL, valid = x.url(e.val, path+".url")
		a.urlVars = varValues(e.val.Value, getenv)
		if valid && kindKnown && a.Kind == AlarmPrometheus {
			// The API path is shipbot's to add: a pasted query endpoint
			// would become …/api/v1/query/api/v1/query, a 404, and an
			// alarm that fires for good.
			if u, err := url.Parse(a.URL); err == nil {
				if p := strings.TrimRight(u.Path, "/"); strings.HasSuffix(p, "/api/v1") || strings.HasSuffix(p, "/api/v1/query") {
					d.errorAt(e.val, path+".url", "must be Prometheus's base URL, without /api/v1/…: shipbot appends /api/v1/query, got %q", e.val.Value)
				}
			}
		}
	}
	if e, ok := m["query"]; ok {
		if kindKnown && a.Kind != AlarmPrometheus {
			d.errorAt(e.key, path+".query", "only for kind %q", AlarmPrometheus)
		} else if v, resolved, ok := x.str(e.val, path+".query"); ok {
			if resolved && strings.TrimSpace(v) == "" {
				d.errorAt(e.val, path+".query", "must not be empty")
			}
			a.Query = v
		}
	} else if kindKnown && a.Kind == AlarmPrometheus {
		d.errorAt(ae.val, path+".query", `required for kind %q: a PromQL expression that returns series while the alarm fires, such as 'rate(http_errors_total[5m]) > 0.05'`, AlarmPrometheus)
	}
	if e, ok := m["filter"]; ok {
		if kindKnown && a.Kind != AlarmAlertmanager {
			d.errorAt(e.key, path+".filter", "only for kind %q", AlarmAlertmanager)
		} else if items, ok := d.list(e.val, path+".filter"); ok {
			for i, item := range items {
				p := index(path+".filter", i)
				v, resolved, ok := x.str(item, p)
				if !ok {
					continue
				}
				if resolved && !matcherRE.MatchString(v) {
					d.errorAt(item, p, `must be an Alertmanager matcher such as 'severity="high"', got %q`, item.Value)
					continue
				}
				a.Filter = append(a.Filter, v)
			}
		}
	}
	sort.Strings(x.unresolved)
	a.Unresolved = x.unresolved
	return a, true
}

// Err reports why the target cannot be used, or nil: it references
// environment variables that are not set on the server.
func (t Target) Err() error {
	if len(t.Unresolved) == 0 {
		return nil
	}
	return &unresolvedError{what: "target", name: t.Name, vars: t.Unresolved}
}

// Secrets returns what the alarm's URL carries that must never be shown
// (its ${VAR}s, password or token user name, basic-auth value and long
// query values; see urlSecrets), for scrubbing text about the alarm.
func (a Alarm) Secrets() []string {
	var out []string
	for _, s := range append(urlSecrets(a.URL), a.urlVars...) {
		out = appendSecret(out, s)
	}
	return out
}

// Err reports why the alarm cannot be evaluated, or nil.
func (a Alarm) Err() error {
	if len(a.Unresolved) == 0 {
		return nil
	}
	return &unresolvedError{what: "alarm", name: a.Name, vars: a.Unresolved}
}

type unresolvedError struct {
	what, name string
	vars       []string
}

func (e *unresolvedError) Error() string {
	if len(e.vars) == 1 {
		return fmt.Sprintf("%s %q: environment variable %s is not set", e.what, e.name, e.vars[0])
	}
	return fmt.Sprintf("%s %q: environment variables %s are not set", e.what, e.name, strings.Join(e.vars, ", "))
}

func (e *unresolvedError) Is(target error) bool { return target == ErrUnresolvedValue }

// Allows reports whether repository repo ("owner/name", any case) may use
// the target. An empty repos list allows no repository: the target carries
// secrets, and forgetting the list must not hand them to every repository
// the App is installed on.
func (t Target) Allows(repo string) bool {
	for _, r := range t.Repos {
		if strings.EqualFold(r, repo) {
			return true
		}
	}
	return false
}

// Secrets returns the target's secret values (constraint values, the signing
// secret, what its URLs carry, the kind's own included: see urlSecrets) for
// scrubbing logs and anything shown on GitHub.
func (t Target) Secrets() []string {
	var out []string
	keys := make([]string, 0, len(t.Constraints))
	for k := range t.Constraints {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = appendSecret(out, t.Constraints[k])
	}
	out = appendSecret(out, t.SigningSecret)
	urls := urlSecrets(t.URL)
	for _, u := range t.kindURLs {
		urls = append(urls, urlSecrets(u)...)
	}
	for _, s := range append(urls, t.urlVars...) {
		out = appendSecret(out, s)
	}
	return out
}

// KnownSecrets returns every secret a text about this target must not show:
// its own (Secrets) and, for a target read by ParseTargets, those of every
// other target and alarm in the file, since a downstream's answer may quote
// anything (a shared proxy, a misrouted request, a debugging echo). They
// are for redaction only: a target's requests carry its own secrets and no
// other's.
func (t Target) KnownSecrets() []string {
	out := t.Secrets()
	for _, s := range t.fileSecrets {
		out = appendSecret(out, s)
	}
	return out
}

// shareSecrets gives every target the file's secrets, for KnownSecrets.
func (ts Targets) shareSecrets() {
	all := ts.Secrets()
	for name, t := range ts.Targets {
		t.fileSecrets = all
		ts.Targets[name] = t
	}
}

func appendSecret(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// minQueryToken is the shortest literal query value taken for a token. A
// ${VAR} is a secret whatever its length (see Target.urlVars); a short
// literal such as ?env=qa or ?v=2 is a setting, and treating it as a secret
// would blank out every "qa" or "2" in errors and Action logs.
const minQueryToken = 8

// urlSecrets returns the credentials URL s carries: the password of its
// user info (or the user name when there is no password: a token put in a
// URL as https://TOKEN@host), the "Basic" Authorization value that net/http
// derives from the user info and sends, which an error page may echo, and
// its query values of minQueryToken bytes or more.
func urlSecrets(s string) []string {
	u, err := url.Parse(s)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		user := u.User.Username()
		pw, hasPW := u.User.Password()
		if hasPW {
			out = append(out, pw)
		} else {
			out = append(out, user)
		}
		if user != "" || pw != "" {
			out = append(out, base64.StdEncoding.EncodeToString([]byte(user+":"+pw)))
		}
	}
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range q[k] {
			if len(v) >= minQueryToken {
				out = append(out, v)
			}
		}
	}
	return out
}

// varValues returns the values of the ${VAR}s in raw, as the file wrote
// it, that are set.
func varValues(raw string, getenv func(string) (string, bool)) []string {
	var out []string
	_, _, _ = expand(raw, func(name string) (string, bool) {
		v, ok := getenv(name)
		if ok && v != "" {
			out = append(out, v)
		}
		return v, ok
	})
	return out
}

// Secrets returns every secret of every target and alarm, without
// duplicates, longest first so that a scrubber replacing them in order never
// leaves the tail of a longer secret that contains a shorter one.
func (ts Targets) Secrets() []string {
	var out []string
	for _, t := range ts.Targets {
		for _, s := range t.Secrets() {
			out = appendSecret(out, s)
		}
	}
	for _, a := range ts.Alarms {
		for _, s := range a.Secrets() {
			out = appendSecret(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) > len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// Lookup returns the target name for repository repo, or an error fit to
// show on the PR: unknown target (ErrUnknownTarget), repository not in its
// repos list (ErrRepoNotAllowed), or an environment variable it needs is not
// set (ErrUnresolvedValue).
func (ts Targets) Lookup(name, repo string) (Target, error) {
	t, ok := ts.Targets[name]
	if !ok {
		return Target{}, &lookupError{msg: fmt.Sprintf("unknown target %q", name), kind: ErrUnknownTarget}
	}
	if !t.Allows(repo) {
		return Target{}, &lookupError{
			msg:  fmt.Sprintf("target %q does not allow repository %s (add it to the target's repos in the targets file)", name, repo),
			kind: ErrRepoNotAllowed,
		}
	}
	if err := t.Err(); err != nil {
		return Target{}, err
	}
	return t, nil
}

type lookupError struct {
	msg  string
	kind error
}

func (e *lookupError) Error() string        { return e.msg }
func (e *lookupError) Is(target error) bool { return target == e.kind }

// ValidateTargets checks that the target of every stage of every pipeline
// (each target of a wave) and its alarms exist and that each target allows
// repo ("owner/name"). Errors carry the stage's line in RepoFile. Unset
// environment variables are not reported here: they fail the stage when it
// runs (Targets.Lookup), since they are the operator's to fix, not the
// repository's.
func (r Repo) ValidateTargets(t Targets, repo string) []error {
	var errs []error
	at := func(s Stage, format string, args ...any) {
		errs = append(errs, &Error{File: RepoFile, Line: s.Line, Msg: fmt.Sprintf(format, args...)})
	}
	for k, p := range r.Pipelines {
		prefix := "stages"
		if r.Multi {
			prefix = index("pipelines", k) + ".stages"
		}
		for i, s := range p.Stages {
			path := index(prefix, i)
			for j, name := range s.TargetNames() {
				key := path + ".target"
				if s.Wave() {
					key = index(path+".targets", j)
				}
				if tgt, ok := t.Targets[name]; !ok {
					at(s, "%s: unknown target %q", key, name)
				} else if !tgt.Allows(repo) {
					at(s, "%s: target %q does not allow repository %s", key, name, repo)
				}
			}
			for j, a := range s.Alarms {
				if _, ok := t.Alarms[a]; !ok {
					at(s, "%s.alarms[%d]: unknown alarm %q", path, j, a)
				}
			}
		}
	}
	return errs
}

package config

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// TargetKind is what the targets file needs to know about a kind of
// target: its name and the keys it reads. The kinds are internal/deploy's
// drivers, which config cannot import (they use Target), so ParseTargets
// is given them (deploy.Registry.Kinds) and knows no kind by name.
type TargetKind interface {
	// Kind is the name a target's kind key gives ("spinnaker").
	Kind() string
	// Keys are the keys of a target's entry the kind uses besides the
	// ones every kind has (kind, constraints, repos, timeout): "url" and
	// "signing_secret" for a kind that posts its trigger to the target's
	// URL (ParseTargets reads them into Target.URL, which it then
	// requires, and Target.SigningSecret), and the kind's own, which
	// ReadSettings reads. Another kind's key on its entry is an error,
	// not a setting silently ignored.
	Keys() []string
	// ReadSettings reads and checks the kind's own keys of one entry,
	// reporting every problem through s; what it returns becomes the
	// Target's Settings (nil for a kind without keys of its own).
	ReadSettings(s *Section) any
}

// Kinds are the kinds of target a targets file may name, in the order its
// messages list them.
type Kinds []TargetKind

// commonKeys are the keys ParseTargets reads itself, in the order the
// "unknown key" message lists them; the kinds' own keys go before
// timeout. url and signing_secret are only for the kinds that list them.
var (
	commonHead = []string{"kind", "url", "constraints", "signing_secret", "repos"}
	commonTail = []string{"timeout"}
)

// CheckKind reports what makes k unfit to register: a name a targets file
// could not give, or a key of its own that is one every kind has.
func CheckKind(k TargetKind) error {
	if !targetNameRE.MatchString(k.Kind()) {
		return fmt.Errorf("target kind %q: the name must match %s", k.Kind(), targetNameRE)
	}
	for _, key := range k.Keys() {
		switch {
		case key == "url" || key == "signing_secret":
		case slices.Contains(commonHead, key) || slices.Contains(commonTail, key):
			return fmt.Errorf("target kind %q: key %q is one every kind has", k.Kind(), key)
		case key == "":
			return fmt.Errorf("target kind %q: empty key", k.Kind())
		}
	}
	return nil
}

func (ks Kinds) lookup(name string) TargetKind {
	for _, k := range ks {
		if k.Kind() == name {
			return k
		}
	}
	return nil
}

func (ks Kinds) names() []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Kind()
	}
	return out
}

// using names the kinds that use key.
func (ks Kinds) using(key string) []string {
	var out []string
	for _, k := range ks {
		if slices.Contains(k.Keys(), key) {
			out = append(out, k.Kind())
		}
	}
	return out
}

// keys are the keys a target's entry may have, whatever its kind.
func (ks Kinds) keys() []string {
	out := slices.Clone(commonHead)
	for _, k := range ks {
		for _, key := range k.Keys() {
			if !slices.Contains(out, key) {
				out = append(out, key)
			}
		}
	}
	return append(out, commonTail...)
}

// Section is one target's entry as its kind reads it (TargetKind.
// ReadSettings): the kind's own keys, with ${VAR} expanded as in every
// other value, and problems reported at their line and column.
type Section struct {
	d    *decoder
	x    *expander
	m    map[string]entry
	node *yaml.Node // the entry's mapping
	path string     // targets.<name>
	t    *Target
	// getenv reads ${VAR}s, for the secrets a URL's variables hold.
	getenv func(string) (string, bool)
}

// Target is the name of the target being read.
func (s *Section) Target() string { return s.t.Name }

// Kind is the kind of the target being read.
func (s *Section) Kind() string { return s.t.Kind }

// Has reports whether the entry sets key.
func (s *Section) Has(key string) bool {
	_, ok := s.m[key]
	return ok
}

// String reads key's value as a string with every ${VAR} expanded. ok is
// false when the entry lacks key, when the value is not a string (an
// error, reported), and when it names a variable that is not set (a
// warning, reported; the target cannot be used until it is set): only a
// value with ok is for the kind to check. v is the expanded value all the
// same, as far as it goes.
func (s *Section) String(key string) (v string, ok bool) {
	e, present := s.m[key]
	if !present {
		return "", false
	}
	v, resolved, ok := s.x.str(e.val, s.path+"."+key)
	return v, ok && resolved
}

// URL reads key's value as an absolute http(s) URL (reported when it is
// not); ok as for String. What the URL carries, its credentials and the
// values of its ${VAR}s, becomes the target's secrets (Target.Secrets).
func (s *Section) URL(key string) (v string, ok bool) {
	e, present := s.m[key]
	if !present {
		return "", false
	}
	v, ok = s.x.url(e.val, s.path+"."+key)
	s.t.kindURLs = append(s.t.kindURLs, v)
	s.t.urlVars = append(s.t.urlVars, varValues(e.val.Value, s.getenv)...)
	return v, ok
}

// Raw is key's value as the file writes it, before ${VAR} expansion: what
// a message may quote, since the expanded value may hold a secret.
func (s *Section) Raw(key string) string {
	if e, ok := s.m[key]; ok {
		return e.val.Value
	}
	return ""
}

// Errorf reports a problem with key, at its value; when the entry lacks
// key (a required key), or key is "" (a problem of the entry as a whole),
// at the entry.
func (s *Section) Errorf(key, format string, args ...any) {
	if key == "" {
		s.d.errorAt(s.node, s.path, format, args...)
		return
	}
	if e, ok := s.m[key]; ok {
		s.d.errorAt(e.val, s.path+"."+key, format, args...)
		return
	}
	s.d.errorAt(s.node, s.path+"."+key, format, args...)
}

// IsRepoName reports whether s is a repository's owner/name.
func IsRepoName(s string) bool { return repoRE.MatchString(s) }

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node tree by hand instead of yaml.Unmarshal into
// structs because it needs what Unmarshal cannot give: every error (not the
// first), each with its line and column, unknown and duplicate keys reported,
// and no silent type coercion ("1" is not a number, "yes" not a boolean).
type decoder struct {
	file  string
	errs  ErrorList
	warns []Warning
}

// entry is one "key: value" pair of a mapping.
type entry struct{ key, val *yaml.Node }

func (d *decoder) errorAt(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	e := &Error{File: d.file, Msg: msg}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// warnAt records a problem that does not stop the file from being used.
func (d *decoder) warnAt(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	w := Warning{File: d.file, Msg: msg}
	if n != nil {
		w.Line, w.Column = n.Line, n.Column
	}
	d.warns = append(d.warns, w)
}

// maxFileSize bounds what we parse; repository files are untrusted input.
const maxFileSize = 1 << 20

// document parses data and returns its root mapping, or nil after recording
// why there is none.
func (d *decoder) document(data []byte) (root *yaml.Node) {
	if len(data) > maxFileSize {
		d.errs = append(d.errs, &Error{File: d.file, Line: 1, Column: 1,
			Msg: fmt.Sprintf("file is %d bytes; the limit is %d", len(data), maxFileSize)})
		return nil
	}
	defer func() {
		// yaml.v3 has panicked on hostile input before; this file comes from
		// any repository the App is installed on.
		if r := recover(); r != nil {
			d.errs = append(d.errs, &Error{File: d.file, Line: 1, Msg: fmt.Sprintf("invalid YAML: %v", r)})
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errs = append(d.errs, &Error{File: d.file, Line: 1, Column: 1, Msg: "file is empty"})
		} else {
			d.errs = append(d.errs, d.syntaxError(err, data))
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.errs = append(d.errs, d.syntaxError(err, data))
		return nil
	case len(extra.Content) > 0 && extra.Content[0].ShortTag() != "!!null":
		d.errorAt(&extra, "", "more than one YAML document; put everything in one")
		return nil
	}
	if len(doc.Content) == 0 {
		d.errs = append(d.errs, &Error{File: d.file, Line: 1, Column: 1, Msg: "file is empty"})
		return nil
	}
	root = doc.Content[0]
	if root.Kind != yaml.MappingNode {
		if root.ShortTag() == "!!null" {
			d.errorAt(root, "", "file is empty")
		} else {
			d.errorAt(root, "", "the top level must be a mapping of keys to values, got %s", describe(root))
		}
		return nil
	}
	return root
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// syntaxError turns a yaml.v3 parse error into a positioned Error. yaml.v3
// reports only a line, and for parser (as opposed to scanner) errors that
// line is zero-based and points at the enclosing construct, so add one;
// without a line the problem is on the first line.
func (d *decoder) syntaxError(err error, data []byte) *Error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if isParserError(m[2]) {
			line++
		}
		if e := d.tabError(m[2], line, data); e != nil {
			return e
		}
		// "Unexpected end of stream" errors point past the last line, where
		// no editor or check run annotation can show them.
		if last := lastLine(data); line > last {
			line = last
		}
		return &Error{File: d.file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		line, col := position(data, bytes.Index(data, []byte("*"+m[1])))
		return &Error{File: d.file, Line: line, Column: col, Msg: fmt.Sprintf("invalid YAML: unknown anchor %q referenced", m[1])}
	}
	return &Error{File: d.file, Line: 1, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// tabError names the tab when a tab in indentation is what broke the file.
// yaml.v3 says "found a tab character that violates indentation" at the
// line of the enclosing construct (often the line before the tab), or "found
// character that cannot start any token" without saying which character,
// and an editor that shows tabs as spaces hides the cause; so find the tab
// and point at it. It returns nil when the error is about something else.
func (d *decoder) tabError(msg string, line int, data []byte) *Error {
	var tabLine, tabCol int
	switch {
	case strings.Contains(msg, "tab character"):
		// The tab is on the reported line or after it, never before.
		tabLine, tabCol = firstIndentTab(data, line)
	case strings.HasPrefix(msg, "found character that cannot start any token"):
		// A scanner error: the line is the offending character's own.
		if l, c := firstIndentTab(data, line); l == line {
			tabLine, tabCol = l, c
		}
	}
	if tabLine == 0 {
		return nil
	}
	return &Error{File: d.file, Line: tabLine, Column: tabCol,
		Msg: "invalid YAML: tab character in indentation; YAML indents with spaces"}
}

// firstIndentTab returns the 1-based line and column of the first tab in
// the indentation of a line at or after line from: among the leading
// spaces, or after a list's "- ". It returns zeros when there is none.
func firstIndentTab(data []byte, from int) (line, col int) {
	for i, l := range bytes.Split(data, []byte("\n")) {
		if i+1 < from {
			continue
		}
		for j := 0; j < len(l); j++ {
			switch c := l[j]; {
			case c == '\t':
				return i + 1, j + 1
			case c == ' ':
			case c == '-' && j+1 < len(l) && (l[j+1] == ' ' || l[j+1] == '\t'):
			default:
				j = len(l) // the indentation ended without a tab
			}
		}
	}
	return 0, 0
}

func isParserError(msg string) bool {
	for _, p := range []string{"did not find expected", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func lastLine(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return max(n, 1)
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, off int) (line, col int) {
	if off < 0 {
		return 1, 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = off - bytes.LastIndexByte(before, '\n')
	return line, col
}

// describe names a node's type for error messages, never its value: values
// in the targets file can be secrets.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing"
	case "!!bool":
		return "a boolean"
	case "!!int", "!!float":
		return "a number"
	default:
		return "a string"
	}
}

// entries returns the pairs of mapping n in order, reporting a non-mapping,
// non-string keys, duplicate keys and aliases. Entries with such problems are
// left out.
func (d *decoder) entries(n *yaml.Node, path string) ([]entry, bool) {
	if !d.noAlias(n, path) {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		d.errorAt(n, path, "must be a mapping, got %s", describe(n))
		return nil, false
	}
	seen := map[string]*yaml.Node{}
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			d.errorAt(k, path, "keys must be plain strings")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorAt(k, join(path, k.Value), "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, entry{k, v})
	}
	return out, true
}

// mapping returns the fields of mapping n by key, reporting keys not in
// known. A null value ("key:" or "key: ~") counts as absent, as it would
// with yaml.Unmarshal.
func (d *decoder) mapping(n *yaml.Node, path string, known ...string) (map[string]entry, bool) {
	es, ok := d.entries(n, path)
	if !ok {
		return nil, false
	}
	out := make(map[string]entry, len(es))
	for _, e := range es {
		if !slices.Contains(known, e.key.Value) {
			d.errorAt(e.key, path, "unknown key %q (known keys: %s)", e.key.Value, strings.Join(known, ", "))
			continue
		}
		if e.val.ShortTag() == "!!null" && e.val.Kind == yaml.ScalarNode {
			continue
		}
		out[e.key.Value] = e
	}
	return out, true
}

// noAlias rejects aliases: following them could expand a small hostile file
// into an exponentially large tree, and no setting needs them.
func (d *decoder) noAlias(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		d.errorAt(n, path, "YAML aliases (*%s) are not supported", n.Value)
		return false
	}
	return true
}

// str returns a scalar's text. Numbers are accepted as text ("pipeline: 2"
// means "2"); booleans, lists and mappings are not.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if !d.noAlias(n, path) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!bool" || n.ShortTag() == "!!null" {
		d.errorAt(n, path, "must be a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// integer reads a whole number. want says what the caller accepts (e.g.
// "must be between 0 and 10"), for a number too large for an int, which is
// out of range rather than "not an integer".
func (d *decoder) integer(n *yaml.Node, path, want string) (int, bool) {
	if !d.noAlias(n, path) {
		return 0, false
	}
	var i int
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && n.Decode(&i) == nil {
		return i, true
	}
	// A plain (unquoted, untagged) scalar spelt as an integer is one even
	// when yaml.v3 tagged it a float (a huge decimal) or a string (a huge
	// 0x number).
	plain := n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
	if n.Kind == yaml.ScalarNode && plain && intTextRE.MatchString(n.Value) {
		d.errorAt(n, path, "out of range (%s), got %s", want, n.Value)
		return 0, false
	}
	d.errorAt(n, path, "must be an integer, got %s", describe(n))
	return 0, false
}

// intTextRE matches the integers YAML 1.1 and 1.2 spell: decimal, 0x, 0o,
// 0b and old-style octal, with _ separators.
var intTextRE = regexp.MustCompile(`^[-+]?([0-9][0-9_]*|0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+)$`)

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	if !d.noAlias(n, path) {
		return false, false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		d.errorAt(n, path, "must be true or false, got %s", describe(n))
		return false, false
	}
	return b, true
}

func (d *decoder) list(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	if !d.noAlias(n, path) {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		d.errorAt(n, path, "must be a list, got %s", describe(n))
		return nil, false
	}
	return n.Content, true
}

// duration parses a Go duration ("10m", "1h30m"); zero is allowed only when
// allowZero is set, negative never.
func (d *decoder) duration(n *yaml.Node, path string, allowZero bool) (time.Duration, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	v, err := parseDuration(s, s)
	switch {
	case err != nil:
		d.errorAt(n, path, "%s", err)
		return 0, false
	case v < 0 || (v == 0 && !allowZero):
		d.errorAt(n, path, "must be positive, got %q", s)
		return 0, false
	}
	return v, true
}

// durationTextRE is the syntax time.ParseDuration accepts. Text that has it
// but does not parse is too long for a time.Duration (about 292 years).
var durationTextRE = regexp.MustCompile(`^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)

// parseDuration is time.ParseDuration with errors fit for a configuration
// file: they quote shown (the text as written, which for a targets file is
// not the expanded value) and tell a huge duration (out of range) from a
// misspelt one.
func parseDuration(s, shown string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	switch {
	case err == nil:
		return v, nil
	case durationTextRE.MatchString(s):
		return 0, fmt.Errorf("out of range (at most 2562047h, about 292 years), got %q", shown)
	default:
		return 0, fmt.Errorf("invalid duration %q", shown)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

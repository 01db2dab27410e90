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
	file string
	errs ErrorList
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

func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	if !d.noAlias(n, path) {
		return 0, false
	}
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		d.errorAt(n, path, "must be an integer, got %s", describe(n))
		return 0, false
	}
	return i, true
}

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
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.errorAt(n, path, "invalid duration %q", s)
		return 0, false
	case v < 0 || (v == 0 && !allowZero):
		d.errorAt(n, path, "must be positive, got %q", s)
		return 0, false
	}
	return v, true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

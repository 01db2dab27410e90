package webhook

import (
	"encoding/json"
)

// decodeEnvelope checks that payload is well-formed JSON and decodes the
// envelope from it, with exactly json.Unmarshal(payload, &env)'s results.
//
// It exists for speed: json.Unmarshal validates the whole document with
// encoding/json's byte-at-a-time scanner before decoding it, which for a
// 25 KB delivery took 190-320 µs, the largest CPU cost on the intake path.
// Here one fast pass validates the document and copies out the members
// the envelope can take (action, installation.id, repository.full_name);
// json.Unmarshal then decodes that small document, so encoding/json's
// rules (case-insensitive names, the last duplicate wins, type errors)
// still decide the values. Anything that is not a valid object goes to
// json.Unmarshal whole, for its exact answer and error.
func decodeEnvelope(payload []byte) (envelope, error) {
	var env envelope
	var buf [256]byte
	sc := jsonScanner{b: payload, out: buf[:0]}
	if !sc.topObject(envelopeFields) {
		err := json.Unmarshal(payload, &env)
		return env, err
	}
	err := json.Unmarshal(sc.out, &env)
	return env, err
}

// field is a JSON member name a decoded struct takes, with the members
// of its own value when that is a struct.
type field struct {
	name string
	sub  []field
}

// envelopeFields mirrors envelope.
var envelopeFields = []field{
	{name: "action"},
	{name: "installation", sub: []field{{name: "id"}}},
	{name: "repository", sub: []field{{name: "full_name"}}},
}

// match reports whether the raw (quoted, still escaped) object key may name
// one of fields under encoding/json's matching (exact, else case-insensitive
// with Unicode folding), and that field's members. A key with escapes or
// non-ASCII bytes is kept whole, for json.Unmarshal to judge.
func match(raw []byte, fields []field) (keep bool, sub []field) {
	k := raw[1 : len(raw)-1]
	for _, c := range k {
		if c == '\\' || c >= 0x80 {
			return true, nil
		}
	}
	for _, f := range fields {
		if equalFoldASCII(k, f.name) {
			return true, f.sub
		}
	}
	return false, nil
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// maxDepth is encoding/json's nesting limit: a document nested deeper is
// invalid there, so it is here.
const maxDepth = 10000

// jsonScanner is a validating JSON scanner that accepts exactly what
// json.Valid accepts (FuzzScannerMatchesEncodingJSON checks it), and copies
// the members of an object that given fields may take to out.
type jsonScanner struct {
	b   []byte
	i   int
	out []byte
}

// topObject reports whether the whole input is one valid JSON object; out
// then holds that object reduced to the members fields may take.
func (s *jsonScanner) topObject(fields []field) bool {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	if !s.object(1, fields) {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value; depth is that of the enclosing container.
func (s *jsonScanner) value(depth int) bool {
	s.space()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth+1, nil)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		return s.str()
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

// object scans an object at nesting depth. With fields, it appends to out
// the object reduced to the members fields may take, their values reduced
// in turn where a field has members of its own.
func (s *jsonScanner) object(depth int, fields []field) bool {
	if depth > maxDepth {
		return false
	}
	s.i++ // {
	if fields != nil {
		s.out = append(s.out, '{')
	}
	kept := 0
	for first := true; ; first = false {
		s.space()
		if first && s.i < len(s.b) && s.b[s.i] == '}' {
			break
		}
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		k := s.i
		if !s.str() {
			return false
		}
		key := s.b[k:s.i]
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.space()
		keep, sub := false, []field(nil)
		if fields != nil {
			keep, sub = match(key, fields)
		}
		if keep {
			if kept > 0 {
				s.out = append(s.out, ',')
			}
			kept++
			s.out = append(s.out, key...)
			s.out = append(s.out, ':')
		}
		v := s.i
		if keep && sub != nil && s.i < len(s.b) && s.b[s.i] == '{' {
			if !s.object(depth+1, sub) {
				return false
			}
		} else {
			if !s.value(depth) {
				return false
			}
			if keep {
				s.out = append(s.out, s.b[v:s.i]...)
			}
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		if s.b[s.i] == ',' {
			s.i++
			continue
		}
		if s.b[s.i] != '}' {
			return false
		}
		break
	}
	s.i++ // }
	if fields != nil {
		s.out = append(s.out, '}')
	}
	return true
}

func (s *jsonScanner) array(depth int) bool {
	if depth > maxDepth {
		return false
	}
	s.i++ // [
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// plain marks the bytes a string holds as they are: not the closing quote,
// not an escape, not a control character. Like encoding/json, any other
// byte is accepted, valid UTF-8 or not.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *jsonScanner) str() bool {
	s.i++ // "
	for {
		for s.i < len(s.b) && plain[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case '"':
			s.i++
			return true
		case '\\':
			s.i++
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				s.i += 5
			default:
				return false
			}
		default: // a control character
			return false
		}
	}
}

func (s *jsonScanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i >= len(s.b):
		return false
	case s.b[s.i] == '0':
		s.i++
	case '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits scans one or more decimal digits.
func (s *jsonScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

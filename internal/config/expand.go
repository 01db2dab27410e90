package config

import (
	"errors"
	"slices"
	"strings"
)

// expand replaces ${NAME} with the value of environment variable NAME and $$
// with a single $. Any other $ is kept, except "$NAME", which is an error:
// it almost certainly meant ${NAME}, and sending the literal text as a secret
// would fail far from the cause. A variable that is unset or set to the empty
// string is left out of the result and returned in missing (an empty secret
// is never what an operator meant). Errors never quote s: it may be a secret.
func expand(s string, getenv func(string) (string, bool)) (out string, missing []string, err error) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", nil, errors.New("unterminated ${ (write $$ for a literal $)")
			}
			name := s[i+2 : i+2+end]
			if !isEnvName(name) {
				return "", nil, errors.New("invalid variable name in ${…}: want letters, digits and _, not starting with a digit")
			}
			if v, ok := getenv(name); ok && v != "" {
				b.WriteString(v)
			} else if !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
			i += 2 + end
		case next == '_' || isLetter(next):
			return "", nil, errors.New("$ followed by a name: write ${NAME} to read an environment variable, or $$ for a literal $")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), missing, nil
}

func isEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || isLetter(c) || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

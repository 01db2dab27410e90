// Package deploytest holds what tests of Spinnaker-facing code share: how
// Echo matches payloadConstraints.
package deploytest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// ConstraintsMatch is Echo's payloadConstraints check: every key is
// required, and its value (toString of the field, or of any element of a
// list) must contain a match of the regex: an unanchored, case-sensitive
// find, not a full match.
func ConstraintsMatch(constraints map[string]string, payload map[string]any) bool {
	for key, pattern := range constraints {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return false
		}
		v, ok := lookupPath(payload, key)
		if !ok || v == nil {
			return false
		}
		if !valueMatches(re, v) {
			return false
		}
	}
	return true
}

func lookupPath(payload map[string]any, key string) (any, bool) {
	if v, ok := payload[key]; ok {
		return v, true
	}
	var cur any = payload
	for _, part := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func valueMatches(re *regexp.Regexp, v any) bool {
	switch v := v.(type) {
	case []any:
		for _, el := range v {
			if valueMatches(re, el) {
				return true
			}
		}
		return false
	case string:
		return re.MatchString(v)
	case float64:
		// Jackson's toString of an integer node has no ".0".
		if v == float64(int64(v)) {
			return re.MatchString(fmt.Sprint(int64(v)))
		}
		return re.MatchString(fmt.Sprint(v))
	default:
		b, _ := json.Marshal(v)
		return re.Match(b)
	}
}

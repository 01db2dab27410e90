package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// valid reports whether b is one valid JSON value, by jsonScanner.
func valid(b []byte) bool {
	s := jsonScanner{b: b}
	if !s.value(0) {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

// jsonSamples covers the grammar's corners, valid and not.
var jsonSamples = []string{
	``, ` `, `{}`, ` { } `, `[]`, `[ ]`, `null`, `true`, `false`, `nul`, `truex`, `True`,
	`0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e10`, `1.5.5`, `2a`,
	`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u00e"`, `"\x"`,
	`"` + "\x01" + `"`, `"` + "\x7f" + `"`, "\"\xff\xfe\"", `"unterminated`, `"\`,
	`{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1 "b":2}`, `{,}`, `{"a":}`, `{"a":1}}`, `{"a":1} x`,
	`[1,2,3]`, `[1,]`, `[,1]`, `[1 2]`, `[[[]]]`, `[[[]]`, `{"a":[{"b":[null,true,false,"x",-1.5e3]}]}`,
	"{\"a\":\t\n\r 1}", "\v{}", `{"a":1}` + "\x00",
	strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	`{"x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`,
	`{"x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`,
}

// envelopeSamples are payloads whose envelope decoding must match
// json.Unmarshal's, value and error.
var envelopeSamples = []string{
	`{"action":"closed","installation":{"id":7},"repository":{"full_name":"acme/api"}}`,
	`{"zen":"x","hook_id":1}`,
	`{"ACTION":"opened","Repository":{"FULL_NAME":"a/b"}}`,
	`{"\u0061ction":"escaped key"}`,
	`{"action":"first","action":"last"}`,
	`{"action":"first","Action":"last"}`,
	`{"action":5}`,
	`{"installation":{"id":"seven"}}`,
	`{"installation":null,"repository":null}`,
	`{"installation":[1]}`,
	`{"repository":{"full_name":"a/b","owner":{"login":"a"}},"pull_request":{"merged":true}}`,
	"{\"actio\u212an\":\"kelvin\",\"acti\u017fon\":\"long s\"}",
	"{\"\u212aey\":1,\"in\u017ftallation\":{\"id\":3}}",
	`{"repository":{"full_name":"a/b"},"repository":{"private":true}}`,
	`{"repository":{"full_name":"a/b"},"repository":null}`,
	`{"repository":{"full_name":"a/b"},"repository":{"FULL_NAME":"c/d"}}`,
	`{"repository":{"owner":{"full_name":"not this"},"full_name":"a/b"}}`,
	`{"repository":{"full\u005fname":"escaped","id":1}}`,
	`{"repository":{"full_name":5}}`,
	`{"repository":["a/b"]}`,
	`{"repository":"a/b"}`,
	`{"repository": {} ,"installation":{ "id" : 1.5 }}`,
	`{"installation":{"id":1e3}}`,
	`{"installation":{"id":-7,"account":{"id":9}},"installation":{}}`,
	`{"Installation":{"ID":12}}`,
	`{"repository":{"full_name":"a/b",}}`,
	`{"repository":{"full_name" "a/b"}}`,
	`[1]`, `"str"`, `null`, `42`, `{"action":`, `{"action":"x"} trailing`, `{"a":01}`,
}

func TestScannerMatchesEncodingJSON(t *testing.T) {
	for _, in := range append(jsonSamples, envelopeSamples...) {
		if got, want := valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("valid(%.60q) = %v; json.Valid says %v", in, got, want)
		}
	}
}

func TestDecodeEnvelopeMatchesUnmarshal(t *testing.T) {
	samples := append([]string{}, envelopeSamples...)
	samples = append(samples, jsonSamples...)
	if b, err := os.ReadFile(filepath.Join("..", "githubtest", "testdata", "webhooks", "pull_request.closed.json")); err == nil {
		samples = append(samples, string(b))
	}
	for _, in := range samples {
		checkEnvelope(t, []byte(in))
	}
}

func checkEnvelope(t *testing.T, in []byte) {
	t.Helper()
	var want envelope
	werr := json.Unmarshal(in, &want)
	got, gerr := decodeEnvelope(in)
	if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("decodeEnvelope(%.80q) error = %v; json.Unmarshal says %v", in, gerr, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeEnvelope(%.80q) = %+v; json.Unmarshal says %+v", in, got, want)
	}
}

func FuzzScannerMatchesEncodingJSON(f *testing.F) {
	for _, s := range append(jsonSamples, envelopeSamples...) {
		if len(s) < 1000 { // the nesting-limit samples only slow the fuzzer down
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := valid(in), json.Valid(in); got != want {
			t.Fatalf("valid(%q) = %v; json.Valid says %v", in, got, want)
		}
		checkEnvelope(t, in)
	})
}

// BenchmarkEnvelope compares decodeEnvelope with json.Unmarshal on a real
// merged-PR delivery (GitHub's published example, 28 KB).
func BenchmarkEnvelope(b *testing.B) {
	payload, err := os.ReadFile(filepath.Join("..", "githubtest", "testdata", "webhooks", "pull_request.closed.json"))
	if err != nil {
		b.Skip(err)
	}
	b.Run("decodeEnvelope", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := decodeEnvelope(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			var env envelope
			if err := json.Unmarshal(payload, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// envelopeFields must name every field envelope decodes, or decodeEnvelope
// would drop the new one silently.
func TestEnvelopeFieldsMirrorEnvelope(t *testing.T) {
	var fieldsOf func(reflect.Type) []field
	fieldsOf = func(ty reflect.Type) []field {
		var fs []field
		for i := range ty.NumField() {
			sf := ty.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Fatalf("envelope field %s needs an explicit JSON name", sf.Name)
			}
			f := field{name: name}
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				f.sub = fieldsOf(ft)
			}
			fs = append(fs, f)
		}
		return fs
	}
	if want := fieldsOf(reflect.TypeOf(envelope{})); !reflect.DeepEqual(envelopeFields, want) {
		t.Fatalf("envelopeFields = %+v; envelope has %+v", envelopeFields, want)
	}
}

//go:build ignore

// Command extract cuts GitHub's OpenAPI description down to what the fake
// serves: the operations githubtest.Routes lists, with their path
// parameters and JSON response schemas, plus the component schemas those
// reference. Descriptions, examples and vendor extensions are dropped to
// keep the result small enough to commit and embed.
//
//	npm pack @octokit/openapi && tar xzf octokit-openapi-*.tgz
//	go run extract.go package/generated/api.github.com.json > subset.json
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/shipbot/shipbot/internal/githubtest"
)

type object = map[string]any

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run extract.go api.github.com.json > subset.json")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "extract:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the description: %w", err)
	}
	var spec object
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	components, _ := spec["components"].(object)
	x := &extractor{components: components, schemas: object{}}

	paths := object{}
	for _, pattern := range githubtest.Routes() {
		method, tmpl, _ := strings.Cut(pattern, " ")
		item, _ := spec["paths"].(object)[tmpl].(object)
		if item == nil {
			return fmt.Errorf("%s: path not in the description", pattern)
		}
		op, _ := item[strings.ToLower(method)].(object)
		if op == nil {
			return fmt.Errorf("%s: operation not in the description", pattern)
		}
		out := object{"operationId": op["operationId"], "responses": x.responses(op["responses"].(object))}
		if params := x.parameters(item["parameters"], op["parameters"]); len(params) > 0 {
			out["parameters"] = params
		}
		dst, _ := paths[tmpl].(object)
		if dst == nil {
			dst = object{}
			paths[tmpl] = dst
		}
		dst[strings.ToLower(method)] = out
	}

	// Errors GitHub sends but does not document are checked against the
	// basic-error shape, so it must be there whatever the routes use.
	x.schema(object{"$ref": "#/components/schemas/basic-error"})
	// The webhook payloads the fake builds, which schemacheck's
	// ValidateWebhook checks against these component schemas.
	for _, name := range webhookSchemas {
		if src, _ := components["schemas"].(object); src[name] == nil {
			return fmt.Errorf("webhook schema %s not in the description", name)
		}
		x.schema(object{"$ref": "#/components/schemas/" + name})
	}

	info, _ := spec["info"].(object)
	doc := object{
		"openapi": spec["openapi"],
		"info": object{
			"title":   "GitHub REST API: the subset githubtest serves",
			"version": info["version"],
			"description": fmt.Sprintf("Extracted by internal/githubtest/schemacheck/testdata/openapi/extract.go from %s of npm package @octokit/openapi %v.",
				"generated/api.github.com.json", info["version"]),
			"license": info["license"],
		},
		"paths":      paths,
		"components": object{"schemas": x.schemas},
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing the subset: %w", err)
	}
	return nil
}

// webhookSchemas are the payload schemas of the webhooks githubtest
// builds ("webhook-<event>-<action>", or "webhook-<event>" for events
// without actions).
var webhookSchemas = []string{
	"webhook-check-run-completed",
	"webhook-check-run-created",
	"webhook-check-suite-completed",
	"webhook-check-suite-requested",
	"webhook-check-suite-rerequested",
	"webhook-issue-comment-created",
	"webhook-merge-group-checks-requested",
	"webhook-merge-group-destroyed",
	"webhook-ping",
	"webhook-pull-request-closed",
	"webhook-pull-request-labeled",
	"webhook-pull-request-opened",
	"webhook-pull-request-reopened",
	"webhook-pull-request-synchronize",
	"webhook-pull-request-unlabeled",
	"webhook-pull-request-review-submitted",
	"webhook-push",
	"webhook-status",
}

type extractor struct {
	components object
	schemas    object
}

// resolve follows a local $ref into components.
func (x *extractor) resolve(v any) object {
	o, _ := v.(object)
	ref, ok := o["$ref"].(string)
	if !ok {
		return o
	}
	parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
	section, _ := x.components[parts[0]].(object)
	return x.resolve(section[parts[1]])
}

// parameters keeps path parameters only: the loader needs them declared,
// and nothing here validates requests.
func (x *extractor) parameters(lists ...any) []any {
	var out []any
	for _, l := range lists {
		ps, _ := l.([]any)
		for _, p := range ps {
			po := x.resolve(p)
			if po["in"] != "path" {
				continue
			}
			out = append(out, object{"name": po["name"], "in": "path", "required": true, "schema": x.schema(po["schema"])})
		}
	}
	return out
}

func (x *extractor) responses(rs object) object {
	out := object{}
	for status, r := range rs {
		ro := x.resolve(r)
		resp := object{"description": "Response " + status}
		if content, ok := ro["content"].(object); ok {
			for mime, m := range content {
				if !strings.Contains(mime, "json") {
					continue
				}
				mo, _ := m.(object)
				if mo["schema"] == nil {
					continue
				}
				resp["content"] = object{"application/json": object{"schema": x.schema(mo["schema"])}}
				break
			}
		}
		out[status] = resp
	}
	return out
}

// schema copies a schema without its prose and vendor extensions and pulls
// in every component it references.
func (x *extractor) schema(v any) any {
	o, ok := v.(object)
	if !ok {
		return v
	}
	if ref, ok := o["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		if name == ref {
			return x.schema(x.resolve(o))
		}
		if _, done := x.schemas[name]; !done {
			x.schemas[name] = nil // mark first: schemas are recursive
			src, _ := x.components["schemas"].(object)
			x.schemas[name] = x.schema(src[name])
		}
		return object{"$ref": ref}
	}
	out := object{}
	for _, k := range sortedKeys(o) {
		val := o[k]
		switch {
		case k == "description" || k == "example" || k == "examples" || k == "title" || strings.HasPrefix(k, "x-"):
		case k == "properties":
			props := object{}
			for name, p := range val.(object) {
				props[name] = x.schema(p)
			}
			out[k] = props
		case k == "items" || k == "additionalProperties" || k == "not":
			out[k] = x.schema(val)
		case k == "allOf" || k == "anyOf" || k == "oneOf":
			var list []any
			for _, s := range val.([]any) {
				list = append(list, x.schema(s))
			}
			out[k] = list
		default:
			out[k] = val
		}
	}
	return out
}

func sortedKeys(o object) []string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

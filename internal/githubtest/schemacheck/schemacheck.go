// Package schemacheck validates the fake GitHub's JSON answers against
// GitHub's published OpenAPI description, with kin-openapi and the subset of
// the description the fake serves (testdata/openapi/subset.json).
//
// It is for tests only: the `bot demo` command links githubtest into the
// shipbot binary, and keeping the validator out of githubtest keeps
// kin-openapi and the embedded description out of it. Turn it on with
//
//	srv := githubtest.New(githubtest.WithSchemaCheck(schemacheck.ValidateResponse))
//
// and read the mismatches with srv.SchemaViolations. ValidateWebhook checks
// a webhook payload (githubtest's PushEvent, MergeGroupEvent, …) against
// the description's webhook-* schemas.
package schemacheck

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// subsetJSON is the part of GitHub's OpenAPI description covering the
// routes the fake serves; testdata/openapi/extract.go makes it.
//
//go:embed testdata/openapi/subset.json
var subsetJSON []byte

var loadSchemas = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(subsetJSON)
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI subset: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validating the OpenAPI subset: %w", err)
	}
	return doc, nil
})

// ValidateResponse checks a response body against GitHub's schema for
// pattern ("METHOD /template") and status. A status the description does
// not list is an error; so is a body for a response that has none. It has
// the signature githubtest.WithSchemaCheck takes.
func ValidateResponse(pattern string, status int, body []byte) error {
	doc, err := loadSchemas()
	if err != nil {
		return err
	}
	method, tmpl, _ := strings.Cut(pattern, " ")
	item := doc.Paths.Value(tmpl)
	if item == nil {
		return fmt.Errorf("%s: path not in the OpenAPI subset", pattern)
	}
	op := item.GetOperation(method)
	if op == nil {
		return fmt.Errorf("%s: operation not in the OpenAPI subset", pattern)
	}
	ref := op.Responses.Value(strconv.Itoa(status))
	if ref == nil {
		ref = op.Responses.Default()
	}
	var media *openapi3.MediaType
	switch {
	case ref != nil && ref.Value != nil:
		media = ref.Value.Content.Get("application/json")
	case status >= 400:
		// GitHub's description leaves out many real error statuses (401
		// on every route, 403 for a missing permission); all of them use
		// the basic-error shape.
		media = &openapi3.MediaType{Schema: doc.Components.Schemas["basic-error"]}
	default:
		return fmt.Errorf("%s: status %d is not a documented response", pattern, status)
	}
	if media == nil || media.Schema == nil || media.Schema.Value == nil {
		if len(bytes.TrimSpace(body)) == 0 {
			return nil
		}
		// GitHub documents some error statuses without a body schema;
		// any JSON error body is acceptable there.
		if status >= 400 && json.Valid(body) {
			return nil
		}
		return fmt.Errorf("%s: status %d has a body but no documented schema", pattern, status)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%s: status %d documents a JSON body but none was sent", pattern, status)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%s: decoding response body: %w", pattern, err)
	}
	if err := media.Schema.Value.VisitJSON(v, openapi3.MultiErrors(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("%s → %d: %w", pattern, status, flatten(err))
	}
	return nil
}

// flatten turns kin-openapi's nested errors, each with a dump of its
// schema, into one short clause per leaf: where in the body, and what.
func flatten(err error) error {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var parts []string
		for _, e := range me {
			parts = append(parts, flatten(e).Error())
		}
		return errors.New(strings.Join(parts, "; "))
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		return fmt.Errorf("at /%s: %s", strings.Join(se.JSONPointer(), "/"), se.Reason)
	}
	return err
}

// ValidateWebhook checks a webhook payload against the schema GitHub's
// description gives for event ("push", "pull_request", …) and the
// payload's action: component "webhook-<event>-<action>", or
// "webhook-<event>" for an event without actions (push, status, ping).
func ValidateWebhook(event string, body []byte) error {
	doc, err := loadSchemas()
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%s payload: %w", event, err)
	}
	name := "webhook-" + strings.ReplaceAll(event, "_", "-")
	if m, ok := v.(map[string]any); ok {
		if action, ok := m["action"].(string); ok {
			name += "-" + strings.ReplaceAll(action, "_", "-")
		}
	}
	ref := doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("%s: schema %s not in the OpenAPI subset", event, name)
	}
	if err := ref.Value.VisitJSON(v, openapi3.MultiErrors(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("%s payload (%s): %w", event, name, flatten(err))
	}
	return nil
}

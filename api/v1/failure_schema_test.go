package v1_test

import (
	"testing"

	v1 "reconciler.dev/reconciler/api/v1"
)

// TestSchemaAgreesWithParserOnFailure: the schema editors use and the
// parser with document validation agree on onFailure.
func TestSchemaAgreesWithParserOnFailure(t *testing.T) {
	sch := compile(t)
	for _, c := range []struct {
		name  string
		doc   string
		valid bool
	}{
		{"long form", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 3, window: 1m}, start: [b]}}]}\n", true},
		{"short form", host + "spec: {services: [{name: a, replicas: 1, onFailure: report}]}\n", true},
		{"start only", host + "spec: {services: [{name: a, replicas: 1, onFailure: {start: [b, c]}}]}\n", true},
		{"unknown short form", host + "spec: {services: [{name: a, replicas: 1, onFailure: restart}]}\n", false},
		{"limit 0", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 0, window: 1m}}}]}\n", false},
		{"no window", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 2}}}]}\n", false},
		{"window not a duration", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 2, window: soon}}}]}\n", false},
		{"unknown field", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 2, window: 1m}, stop: [b]}}]}\n", false},
		{"start twice", host + "spec: {services: [{name: a, replicas: 1, onFailure: {start: [b, b]}}]}\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			docs := documents(t, []byte(c.doc))
			if len(docs) != 1 {
				t.Fatalf("%d documents", len(docs))
			}
			err := sch.Validate(docs[0])
			if c.valid != (err == nil) {
				t.Errorf("schema: valid=%v, want %v (%v)", err == nil, c.valid, err)
			}
			parsed, errs := v1.ParseFile("x.yaml", []byte(c.doc))
			for _, d := range parsed {
				errs = append(errs, v1.ValidateDocument(d)...)
			}
			if c.valid != (len(errs) == 0) {
				t.Errorf("the parser and ValidateDocument say %v, want valid=%v", errs, c.valid)
			}
		})
	}
}

package v1_test

import "testing"

// TestSchemaAgreesWithParserOnFailure: the schema editors use and the
// parser with document validation agree on onFailure.
func TestSchemaAgreesWithParserOnFailure(t *testing.T) {
	checkSchemaAgrees(t, []schemaCase{
		{"long form", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 3, window: 1m}, start: [b]}}]}\n", true},
		{"short form", host + "spec: {services: [{name: a, replicas: 1, onFailure: report}]}\n", true},
		{"start only", host + "spec: {services: [{name: a, replicas: 1, onFailure: {start: [b, c]}}]}\n", true},
		{"unknown short form", host + "spec: {services: [{name: a, replicas: 1, onFailure: restart}]}\n", false},
		{"limit 0", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 0, window: 1m}}}]}\n", false},
		{"no window", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 2}}}]}\n", false},
		{"window not a duration", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 2, window: soon}}}]}\n", false},
		{"unknown field", host + "spec: {services: [{name: a, replicas: 1, onFailure: {restart: {limit: 2, window: 1m}, stop: [b]}}]}\n", false},
		{"start twice", host + "spec: {services: [{name: a, replicas: 1, onFailure: {start: [b, b]}}]}\n", false},
	})
}

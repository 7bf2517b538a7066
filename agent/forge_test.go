package agent

import (
	"errors"
	"strings"
	"testing"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/desired"
)

func TestStatusDescriptions(t *testing.T) {
	ie := &desired.InvalidError{Errors: v1.ErrorList{
		{Pos: v1.Pos{File: "hosts/g1.yaml", Line: 9, Col: 17}, Path: "spec.services[a].replicas", Msg: "must not be negative"},
		{Pos: v1.Pos{File: "hosts/g1.yaml", Line: 12, Col: 3}, Msg: "x"},
	}}
	if got, want := refusedDescription(ie), "refused: hosts/g1.yaml:9:17: spec.services[a].replicas: must not be negative (+1 more)"; got != want {
		t.Errorf("refused: %q, want %q", got, want)
	}
	plan := &engine.Plan{Actions: []controllers.Action{{Subject: "swarm/b", Stage: 2}, {Subject: "swarm/a", Stage: 3}}}
	res := &engine.Result{Failures: map[string]error{"swarm/a": errors.New("not ready"), "swarm/b": errors.New("probe failed")}}
	if got := failureDescription(plan, res); !strings.HasPrefix(got, "failed at stage 2, swarm/b: probe failed (+1 more)") {
		t.Errorf("failure: %q", got)
	}
}

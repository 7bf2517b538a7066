package controllers

import (
	"testing"

	v1 "reconciler.dev/reconciler/api/v1"
)

func TestWakesOnCrash(t *testing.T) {
	limit := int32(3)
	restart := &v1.FailurePolicy{Restart: &v1.RestartPolicy{Limit: &limit}}
	standby := &v1.FailurePolicy{Start: []string{"b"}}
	svc := func(p *v1.FailurePolicy, mode Mode, f FailureMode) Target {
		return Target{Kind: KindService, Name: "a", Driver: v1.DriverSystemd, Service: &v1.Service{Name: "a", OnFailure: p}, Mode: mode, Failure: f}
	}
	for _, c := range []struct {
		name string
		t    Target
		want bool
	}{
		{"restart policy", svc(restart, Enforce, ""), true},
		{"restart policy, restarting", svc(restart, Enforce, FailureRestart), true},
		{"standby policy", svc(standby, Enforce, ""), true},
		{"report (no policy)", svc(nil, Enforce, ""), false},
		{"report (empty policy)", svc(&v1.FailurePolicy{}, Enforce, FailureReport), false},
		{"given up", svc(restart, Enforce, FailureGaveUp), false},
		{"drift reported only", svc(restart, ReportOnly, ""), false},
		{"a unit", Target{Kind: KindUnit, Name: "x.timer", Driver: v1.DriverSystemd, Unit: &v1.Unit{Name: "x.timer"}, Mode: Enforce}, false},
	} {
		if got := WakesOnCrash(c.t); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestErrorExit(t *testing.T) {
	for code, want := range map[int]bool{0: false, 1: true, 2: true, 137: false, 143: false, 139: true, -1: false} {
		if got := ErrorExit(code); got != want {
			t.Errorf("ErrorExit(%d) = %v, want %v", code, got, want)
		}
	}
}

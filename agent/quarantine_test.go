package agent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/drivertest"
	"reconciler.dev/reconciler/controllers/engine"
)

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		in   Trial
		want Verdict
	}{
		{"nothing in force", Trial{Now: t0, Within: time.Minute}, VerdictUnjudged},
		{"abandoned pass proves nothing", Trial{InForce: "b", Healthy: "a", Since: t0, Now: t0.Add(time.Hour), Within: time.Minute, Abandoned: true}, VerdictUnjudged},
		{"ok pass", Trial{InForce: "b", Healthy: "a", Since: t0, Now: t0.Add(time.Hour), Within: time.Minute, OK: true}, VerdictHealthy},
		{"ok first revision", Trial{InForce: "a", Since: t0, Now: t0, OK: true}, VerdictHealthy},
		{"within the bound", Trial{InForce: "b", Healthy: "a", Since: t0, Now: t0.Add(59 * time.Second), Within: time.Minute}, VerdictOnTrial},
		{"at the bound", Trial{InForce: "b", Healthy: "a", Since: t0, Now: t0.Add(time.Minute), Within: time.Minute}, VerdictQuarantine},
		{"past the bound", Trial{InForce: "b", Healthy: "a", Since: t0, Now: t0.Add(time.Hour), Within: time.Minute}, VerdictQuarantine},
		{"gating off", Trial{InForce: "b", Healthy: "a", Since: t0, Now: t0.Add(time.Hour)}, VerdictOnTrial},
		{"healthy before, failing now", Trial{InForce: "a", Healthy: "a", Since: t0, Now: t0.Add(time.Hour), Within: time.Minute}, VerdictDegraded},
		{"nothing to go back to", Trial{InForce: "a", Since: t0, Now: t0.Add(time.Hour), Within: time.Minute}, VerdictNoFallback},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Judge(c.in); got != c.want {
				t.Errorf("Judge(%+v) = %s, want %s", c.in, got, c.want)
			}
		})
	}
}

func TestFailingObject(t *testing.T) {
	failures := map[string]error{
		"swarm/c": &engine.BlockedError{Subject: "swarm/c", By: "swarm/b", Reason: "its dependency b is not ready"},
		"swarm/b": errors.New("probe timed out"),
		"swarm/z": errors.New("no room"),
	}
	if s, r := failingObject(failures, "stage 2 failed"); s != "swarm/b" || r != "probe timed out" {
		t.Errorf("failingObject = %q %q, want the first object that failed itself", s, r)
	}
	if s, _ := failingObject(map[string]error{"swarm/c": failures["swarm/c"]}, ""); s != "swarm/c" {
		t.Errorf("only a blocked object: %q", s)
	}
	if s, r := failingObject(nil, "declared objects are missing"); s != "" || r != "declared objects are missing" {
		t.Errorf("no failed object: %q %q", s, r)
	}
}

// A revision that does not become healthy within the bound is quarantined,
// the last healthy one goes back in force through an ordinary pass, the bad
// one is never tried again (across a restart too), a newer commit is tried
// normally, and a release lets the quarantined one be tried again.
func TestQuarantineAndRevert(t *testing.T) {
	h := newPassHost(t)
	probe := drivertest.ClosedAddr(t)
	bad := "  services:\n    - name: a\n      replicas: 3\n      ready: {tcp: \"" + probe + "\", timeout: 20ms}\n"
	setWithin := func(d time.Duration) { h.a.cfg.HealthyWithin = d }
	step := func(i int, want string) status.PassSummary {
		t.Helper()
		sum, err := h.pass()
		if sum.Result != want {
			t.Fatalf("step %d: result %s (%v), want %s", i, sum.Result, err, want)
		}
		return sum
	}
	drainTrigger := func() string {
		select {
		case r := <-h.a.trigger:
			return r
		default:
			return ""
		}
	}

	// 1. r1 converges: it is the healthy revision.
	h.sw.Service("swarm/a", 0)
	h.src.commit("r1", "  services:\n    - name: a\n      replicas: 1\n")
	setWithin(time.Hour)
	step(1, names.ResultConverged)
	if st := h.state(t); st.Healthy == nil || st.Healthy.Revision.ID != "r1" || st.HealthySince.IsZero() {
		t.Fatalf("after a healthy pass the state holds %+v since %s", st.Healthy, st.HealthySince)
	}
	if s := h.a.Status(); s.Revision.HealthySince.IsZero() || conditionStatus(s, names.ConditionRevisionHealthy) != "true" {
		t.Errorf("status %+v, conditions %+v", s.Revision, s.Conditions)
	}

	// 2. r2's probe never passes: on trial while within the bound.
	h.src.commit("r2", bad)
	step(2, names.ResultFailed)
	if s := h.a.Status(); s.Revision.ID != "r2" || s.QuarantinedRevision != nil || !s.Revision.HealthySince.IsZero() {
		t.Fatalf("on trial: revision %+v, quarantined %+v", s.Revision, s.QuarantinedRevision)
	}

	// 3. Past the bound: quarantined, r1 back in force, a pass asked for.
	setWithin(time.Nanosecond)
	drainTrigger()
	step(3, names.ResultFailed)
	s := h.a.Status()
	q := s.QuarantinedRevision
	if q == nil || q.ID != "r2" || q.Subject != "swarm/a" || q.Reason == "" || q.RevertedTo != "r1" {
		t.Fatalf("quarantinedRevision %+v", q)
	}
	if s.Revision.ID != "r1" || s.Revision.Reverted != "r2" || countEvents(s, names.EventQuarantined) != 1 || countEvents(s, names.EventReverted) != 1 {
		t.Errorf("revision %+v, events %+v", s.Revision, s.Events)
	}
	if st := h.state(t); st.Good.Revision.ID != "r1" || len(st.Quarantined) != 1 || st.Quarantined[0].ID != "r2" {
		t.Errorf("state dir: good %s, quarantined %+v", st.Good.Revision.ID, st.Quarantined)
	}
	if page := getPath(h.a.Handler(), "/").Body.String(); !strings.Contains(page, "Quarantined revisions") || !strings.Contains(page, "swarm/a") {
		t.Errorf("the page does not show the quarantine:\n%s", page)
	}
	metrics := getPath(h.a.Handler(), "/metrics").Body.String()
	for _, want := range []string{`reconciler_quarantined_revision_info{revision="r2",subject="swarm/a"} 1`, "reconciler_reverts_total 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if r := drainTrigger(); r != "revert" {
		t.Errorf("no pass triggered at once after the revert (trigger %q)", r)
	}

	// 4. The revert is an ordinary pass of r1: back to 1 replica; r2, still
	// the head, is not tried again.
	sum := step(4, names.ResultConverged)
	if sum.Revision != "r1" || h.sw.Get("swarm/a").Replicas != 1 {
		t.Errorf("pass enforced %s, a %+v", sum.Revision, h.sw.Get("swarm/a"))
	}

	// 5. A restart remembers the quarantine.
	h.restart(t)
	setWithin(time.Nanosecond)
	sum = step(5, names.ResultInSync)
	if s := h.a.Status(); sum.Revision != "r1" || s.QuarantinedRevision == nil || s.QuarantinedRevision.ID != "r2" {
		t.Errorf("after a restart: pass enforced %s, quarantined %+v", sum.Revision, s.QuarantinedRevision)
	}

	// 6. A release lets r2 be tried again (and quarantined again).
	if _, err := h.a.Release("nope", "test"); !errors.Is(err, ErrNotQuarantined) {
		t.Errorf("release of nothing: %v", err)
	}
	if _, err := h.a.Release("r2", "test"); err != nil {
		t.Fatal(err)
	}
	if countEvents(h.a.Status(), names.EventQuarantineReleased) != 1 || len(h.state(t).Quarantined) != 0 {
		t.Errorf("release not recorded: %+v", h.state(t).Quarantined)
	}
	sum = step(6, names.ResultFailed)
	if sum.Revision != "r2" || h.a.Status().Revision.ID != "r1" || len(h.state(t).Quarantined) != 1 {
		t.Errorf("released r2 not tried or not quarantined again: pass %s, in force %s", sum.Revision, h.a.Status().Revision.ID)
	}
	step(7, names.ResultConverged) // r1 again

	// 8. A newer commit is tried normally and proves healthy.
	h.src.commit("r3", "  services:\n    - name: a\n      replicas: 2\n")
	sum = step(8, names.ResultConverged)
	if st := h.state(t); sum.Revision != "r3" || st.Healthy.Revision.ID != "r3" || h.sw.Get("swarm/a").Replicas != 2 {
		t.Errorf("r3: pass %s, healthy %s, a %+v", sum.Revision, st.Healthy.Revision.ID, h.sw.Get("swarm/a"))
	}

	// 9. A healthy revision failing later is degraded, not reverted.
	h.sw.FailOn("swarm/a", errors.New("daemon says no"))
	h.sw.Service("swarm/a", 0)
	step(9, names.ResultFailed)
	if s := h.a.Status(); s.Revision.ID != "r3" || len(s.Quarantined) != 1 {
		t.Errorf("a degraded healthy revision was reverted: %+v %+v", s.Revision, s.Quarantined)
	}
}

package fleet

import (
	"errors"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

var t0 = time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)

// host is an agent's status: its wave, the revision it runs, healthy since
// (zero: not healthy), and what it quarantined.
func host(name, wave, rev string, healthySince time.Time, quarantined ...string) *status.Status {
	st := &status.Status{Host: name, Labels: map[string]string{DefaultWaveLabel: wave}}
	if rev != "" {
		st.Revision = &status.RevisionStatus{ID: rev, HealthySince: healthySince}
	}
	for _, q := range quarantined {
		st.Quarantined = append(st.Quarantined, status.QuarantinedRevision{ID: q, Subject: "swarm/web", Reason: "probe failed", Within: "5s"})
	}
	return st
}

func TestJudgeHost(t *testing.T) {
	soak := time.Minute
	degraded := host("h", "w", "b", time.Time{})
	degraded.Conditions = []status.Condition{{Type: names.ConditionRevisionHealthy, Status: false, Reason: names.ReasonDegraded}}
	refused := host("h", "w", "a", t0)
	refused.FailedRevision = &status.FailedRevision{ID: "b", Reason: "invalid"}
	reverted := host("h", "w", "a", t0, "b")
	reverted.Revision.Reverted = "b"
	cases := []struct {
		name   string
		st     *status.Status
		target string
		want   HostState
	}{
		{"unreachable", nil, "b", HostUnavailable},
		{"old revision", host("h", "w", "a", t0), "b", HostProgressing},
		{"on it, not healthy yet", host("h", "w", "b", time.Time{}), "b", HostProgressing},
		{"healthy, soaking", host("h", "w", "b", t0.Add(-30*time.Second)), "b", HostSoaking},
		{"healthy for the soak", host("h", "w", "b", t0.Add(-time.Minute)), "b", HostSoaked},
		{"quarantined the target", host("h", "w", "a", t0, "b"), "b", HostHalted},
		{"quarantined an older one", host("h", "w", "c", t0.Add(-time.Hour), "b"), "c", HostSoaked},
		{"refused the target", refused, "b", HostHalted},
		{"degraded", degraded, "b", HostUnavailable},
		{"no target: reverted", reverted, "", HostHalted},
		{"no target: healthy", host("h", "w", "a", t0.Add(-time.Hour)), "", HostSoaked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, why := JudgeHost(c.st, c.target, soak, t0); got != c.want {
				t.Errorf("JudgeHost = %s (%s), want %s", got, why, c.want)
			}
		})
	}
}

func TestPlanRollout(t *testing.T) {
	spec := RolloutSpec{Source: "main", Waves: []string{"canary", "second", "rest"}, RefPrefix: "rollout/", Soak: time.Minute}
	agents := []string{"a1", "a2", "a3", "a4"}
	// History: a <- b <- c (c is the newest); x is unrelated.
	ancestry := map[string][]string{"a": {}, "b": {"a"}, "c": {"b", "a"}, "x": {}}
	descends := func(c, base string) (bool, error) {
		anc, ok := ancestry[c]
		if !ok {
			return false, errors.New("unknown commit")
		}
		for _, a := range anc {
			if a == base {
				return true, nil
			}
		}
		return c == base, nil
	}
	long := t0.Add(-time.Hour)
	type want struct {
		promote map[string]string // wave -> revision it is moved to
		states  map[string]WaveState
		halted  bool
		done    bool
	}
	cases := []struct {
		name    string
		heads   map[string]string
		answers map[string]*status.Status
		budget  int
		want    want
	}{
		{"a new commit goes to the canary first, nothing else moves",
			map[string]string{"main": "b", "rollout/canary": "a", "rollout/second": "a", "rollout/rest": "a"},
			map[string]*status.Status{"a1": host("c1", "canary", "a", long), "a2": host("s1", "second", "a", long), "a3": host("s2", "second", "a", long), "a4": host("r1", "rest", "a", long)},
			0, want{promote: map[string]string{"canary": "b"}, states: map[string]WaveState{"canary": WaveSoaked, "second": WaveSoaked, "rest": WaveSoaked}}},
		{"the canary soaking: the second wave waits",
			map[string]string{"main": "b", "rollout/canary": "b", "rollout/second": "a", "rollout/rest": "a"},
			map[string]*status.Status{"a1": host("c1", "canary", "b", t0.Add(-10*time.Second)), "a2": host("s1", "second", "a", long), "a3": host("s2", "second", "a", long), "a4": host("r1", "rest", "a", long)},
			0, want{promote: map[string]string{}, states: map[string]WaveState{"canary": WaveSoaking}}},
		{"the canary soaked: the second wave follows it",
			map[string]string{"main": "b", "rollout/canary": "b", "rollout/second": "a", "rollout/rest": "a"},
			map[string]*status.Status{"a1": host("c1", "canary", "b", t0.Add(-time.Minute)), "a2": host("s1", "second", "a", long), "a3": host("s2", "second", "a", long), "a4": host("r1", "rest", "a", long)},
			0, want{promote: map[string]string{"second": "b"}, states: map[string]WaveState{"canary": WaveSoaked}}},
		{"one host of the second wave still progressing: the rest waits",
			map[string]string{"main": "b", "rollout/canary": "b", "rollout/second": "b", "rollout/rest": "a"},
			map[string]*status.Status{"a1": host("c1", "canary", "b", long), "a2": host("s1", "second", "b", long), "a3": host("s2", "second", "a", long), "a4": host("r1", "rest", "a", long)},
			0, want{promote: map[string]string{}, states: map[string]WaveState{"second": WaveProgressing}}},
		{"a quarantine at the canary halts; a newer commit still reaches the canary",
			map[string]string{"main": "c", "rollout/canary": "b", "rollout/second": "a", "rollout/rest": "a"},
			map[string]*status.Status{"a1": host("c1", "canary", "a", long, "b"), "a2": host("s1", "second", "a", long), "a3": host("s2", "second", "a", long), "a4": host("r1", "rest", "a", long)},
			0, want{promote: map[string]string{"canary": "c"}, states: map[string]WaveState{"canary": WaveHalted}, halted: true}},
		{"an unreachable host within the budget",
			map[string]string{"main": "b", "rollout/canary": "b", "rollout/second": "b", "rollout/rest": "a"},
			map[string]*status.Status{"a1": host("c1", "canary", "b", long), "a2": host("s1", "second", "b", long), "a3": nil, "a4": host("r1", "rest", "a", long)},
			1, want{promote: map[string]string{"rest": "b"}, states: map[string]WaveState{"second": WaveSoaked}}},
		{"an unreachable host beyond the budget halts",
			map[string]string{"main": "b", "rollout/canary": "b", "rollout/second": "b", "rollout/rest": "a"},
			map[string]*status.Status{"a1": host("c1", "canary", "b", long), "a2": host("s1", "second", "b", long), "a3": nil, "a4": host("r1", "rest", "a", long)},
			0, want{promote: map[string]string{}, states: map[string]WaveState{"canary": WaveHalted}, halted: true}},
		{"not a fast-forward: blocked",
			map[string]string{"main": "x", "rollout/canary": "a", "rollout/second": "a", "rollout/rest": "a"},
			map[string]*status.Status{"a1": host("c1", "canary", "a", long), "a2": host("s1", "second", "a", long), "a3": host("s2", "second", "a", long), "a4": host("r1", "rest", "a", long)},
			0, want{promote: map[string]string{}}},
		{"first run: the branches do not exist yet",
			map[string]string{"main": "a"},
			map[string]*status.Status{"a1": host("c1", "canary", "", time.Time{}), "a2": host("s1", "second", "", time.Time{}), "a3": host("s2", "second", "", time.Time{}), "a4": host("r1", "rest", "", time.Time{})},
			0, want{promote: map[string]string{"canary": "a"}, states: map[string]WaveState{"canary": WaveProgressing}}},
		{"done",
			map[string]string{"main": "b", "rollout/canary": "b", "rollout/second": "b", "rollout/rest": "b"},
			map[string]*status.Status{"a1": host("c1", "canary", "b", long), "a2": host("s1", "second", "b", long), "a3": host("s2", "second", "b", long), "a4": host("r1", "rest", "b", long)},
			0, want{promote: map[string]string{}, done: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			answers := map[string]Answer{}
			for a, st := range c.answers {
				if st == nil {
					answers[a] = Answer{Err: errors.New("connection refused")}
				} else {
					answers[a] = Answer{Status: st}
				}
			}
			s := spec
			s.MaxUnavailable = c.budget
			ro := PlanRollout(s, agents, answers, c.heads, descends, t0)
			got := map[string]string{}
			for _, w := range ro.Waves {
				if w.Promote != nil {
					got[w.Name] = w.Promote.To
				}
				if want, ok := c.want.states[w.Name]; ok && w.State != want {
					t.Errorf("wave %s: %s (%s), want %s", w.Name, w.State, w.Reason, want)
				}
			}
			if len(got) != len(c.want.promote) {
				t.Errorf("promotes %v, want %v", got, c.want.promote)
			}
			for w, rev := range c.want.promote {
				if got[w] != rev {
					t.Errorf("promotes %v, want %v", got, c.want.promote)
				}
			}
			if ro.Halted != c.want.halted || ro.Done != c.want.done {
				t.Errorf("halted %v done %v, want %v %v: %+v", ro.Halted, ro.Done, c.want.halted, c.want.done, ro.Waves)
			}
			for _, w := range ro.Waves {
				if w.State == WaveHalted && (w.Halt == nil || w.Reason == "") {
					t.Errorf("wave %s halted without saying which host and why: %+v", w.Name, w)
				}
			}
		})
	}
}

// The page and the report show each host's wave and where it stands, and
// the waves' table when a rollout was judged.
func TestRolloutOnPage(t *testing.T) {
	agents := []string{"a1", "a2"}
	answers := map[string]Answer{"a1": {Status: host("c1", "canary", "a", t0.Add(-time.Hour), "b")}, "a2": {Status: host("s1", "second", "a", t0.Add(-time.Hour))}}
	spec := RolloutSpec{Source: "main", Waves: []string{"canary", "second"}, RefPrefix: "rollout/", Soak: time.Minute}
	heads := map[string]string{"main": "b", "rollout/canary": "b", "rollout/second": "a"}
	ro := PlanRollout(spec, agents, answers, heads, func(string, string) (bool, error) { return true, nil }, t0)
	rep := Summarize(agents, answers, "", t0)
	rep.AddRollout(answers, &ro, "", spec.Soak)
	if rep.Hosts[0].Wave != "canary" || rep.Hosts[0].Rollout != HostHalted || rep.Hosts[1].Rollout != HostSoaked {
		t.Fatalf("hosts %+v", rep.Hosts)
	}
	var b strings.Builder
	if err := WritePage(&b, rep, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Rollout in waves", "rollout/canary", "halted", "quarantined b", "soaked"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the page lacks %q:\n%s", want, b.String())
		}
	}
}

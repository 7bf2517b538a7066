package fleet

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

// A rollout in waves (README "Rollouts in waves"). Each host's wave is one
// of its labels (DefaultWaveLabel), so the desired state says it; each wave
// follows a branch of its own (RefPrefix + wave name), so an agent's --ref
// says which revisions reach it. Git stays the only writer and agents never
// talk to each other: `fleet promote`, run from CI or a timer, reads every
// agent's /status and fast-forwards the branch of a wave to what the wave
// before it runs, only when every host of that wave reports it converged
// and ready for the soak time (a budget of hosts may be unavailable). A
// quarantine or a refusal of the wave's revision on any host halts the
// rollout there, and says which host and why. The first wave follows the
// branch operators commit to.

// DefaultWaveLabel is the label naming a host's wave.
const DefaultWaveLabel = "reconciler.dev/wave"

// HostState is where one host stands in its wave's rollout.
type HostState string

const (
	// HostProgressing: not yet on its wave's revision, or on it and not
	// yet converged and ready.
	HostProgressing HostState = "progressing"
	// HostSoaking: converged and ready on it, for less than the soak time.
	HostSoaking HostState = "soaking"
	// HostSoaked: converged and ready on it for the soak time at least.
	HostSoaked HostState = "soaked"
	// HostHalted: it quarantined or refused the revision.
	HostHalted HostState = "halted"
	// HostUnavailable: unreachable, or failing on a revision it ran
	// healthy before (counted against --max-unavailable).
	HostUnavailable HostState = "unavailable"
)

// WaveState is where a wave stands.
type WaveState string

const (
	WaveProgressing WaveState = "progressing"
	WaveSoaking     WaveState = "soaking"
	WaveSoaked      WaveState = "soaked" // every host (but the budget) soaked: the next wave may follow
	WaveHalted      WaveState = "halted"
)

// JudgeHost says where a host stands against target, its wave's revision
// ("" when not known: then the revision it runs), soak and now. It is pure.
func JudgeHost(st *status.Status, target string, soak time.Duration, now time.Time) (HostState, string) {
	if st == nil {
		return HostUnavailable, "unreachable"
	}
	if target == "" && st.Revision != nil {
		target = st.Revision.ID
		if r := st.Revision.Reverted; r != "" {
			return HostHalted, "reverted: quarantined " + Short(r) + quarantineReason(st, r)
		}
	}
	for _, q := range st.Quarantined {
		if target != "" && q.ID == target {
			return HostHalted, "quarantined " + Short(q.ID) + ": " + q.Describe()
		}
	}
	if f := st.FailedRevision; f != nil && target != "" && f.ID == target {
		return HostHalted, "refused " + Short(f.ID) + ": " + f.Reason
	}
	if st.Revision == nil {
		return HostProgressing, "no revision in force yet"
	}
	if st.Revision.ID != target {
		return HostProgressing, "runs " + Short(st.Revision.ID) + ", not yet " + Short(target)
	}
	if c, ok := condition(st, names.ConditionRevisionHealthy); ok && !c.Status {
		switch c.Reason {
		case names.ReasonDegraded:
			return HostUnavailable, "failing: " + lastError(st)
		case names.ReasonNoFallback:
			return HostHalted, "not healthy within its bound, nothing to go back to: " + lastError(st)
		}
	}
	hs := st.Revision.HealthySince
	if hs.IsZero() {
		return HostProgressing, "not converged and ready yet: " + lastError(st)
	}
	if d := now.Sub(hs); d < soak {
		return HostSoaking, fmt.Sprintf("healthy for %s of %s", d.Round(time.Second), soak)
	}
	return HostSoaked, "healthy for " + now.Sub(hs).Round(time.Second).String()
}

func quarantineReason(st *status.Status, id string) string {
	for _, q := range st.Quarantined {
		if q.ID == id {
			return ": " + q.Describe()
		}
	}
	return ""
}

func condition(st *status.Status, typ string) (status.Condition, bool) {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return status.Condition{}, false
}

func lastError(st *status.Status) string {
	if p := st.LastPass; p != nil && p.Error != "" {
		return p.Error
	}
	return "no pass ended converged and ready yet"
}

// Wave is one wave of a rollout: its branch, the revision at its head, and
// its hosts.
type Wave struct {
	Name     string         `json:"name"`
	Ref      string         `json:"ref"`
	Revision string         `json:"revision,omitempty"` // the head of Ref ("" when it does not exist yet)
	State    WaveState      `json:"state"`
	Reason   string         `json:"reason,omitempty"`
	Hosts    []WaveHost     `json:"hosts"`
	Promote  *Promotion     `json:"promote,omitempty"` // what this run moves Ref to
	Blocked  string         `json:"blocked,omitempty"` // why Ref is not moved although it is behind
	Halt     *HostHalt      `json:"halt,omitempty"`
	Budget   int            `json:"maxUnavailable"`
	Counts   map[string]int `json:"counts,omitempty"` // hosts by state
}

// WaveHost is one host in its wave.
type WaveHost struct {
	Agent    string    `json:"agent"`
	Host     string    `json:"host,omitempty"`
	Revision string    `json:"revision,omitempty"`
	State    HostState `json:"state"`
	Reason   string    `json:"reason,omitempty"`
}

// HostHalt names the host that halted a wave, and why.
type HostHalt struct {
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// Promotion is one fast-forward of a wave's branch.
type Promotion struct {
	Ref  string `json:"ref"`
	From string `json:"from,omitempty"`
	To   string `json:"to"`
}

// Rollout is the whole rollout as one promote run judges it.
type Rollout struct {
	Source   string `json:"source"`   // the branch operators commit to
	Revision string `json:"revision"` // its head
	Waves    []Wave `json:"waves"`
	// Unassigned are agents whose wave label names no wave of the rollout.
	Unassigned []WaveHost `json:"unassigned,omitempty"`
	Halted     bool       `json:"halted"`
	Done       bool       `json:"done"` // every wave soaked on Revision
	At         time.Time  `json:"at"`
}

// RolloutSpec is what a rollout is judged by.
type RolloutSpec struct {
	Source         string   // branch operators commit to (the first wave's input)
	Waves          []string // in order; the first is the canary
	RefPrefix      string   // a wave's branch is RefPrefix + name
	WaveLabel      string   // default DefaultWaveLabel
	Soak           time.Duration
	MaxUnavailable int
}

// WaveRef is the branch a wave follows.
func (s RolloutSpec) WaveRef(wave string) string { return s.RefPrefix + wave }

// PlanRollout judges every wave and decides which branches to move. heads
// are the branch heads (Source and every wave's); descends(a, b) says
// whether commit a descends from b. It is pure but for descends.
func PlanRollout(spec RolloutSpec, agents []string, answers map[string]Answer, heads map[string]string,
	descends func(a, b string) (bool, error), now time.Time) Rollout {
	if spec.WaveLabel == "" {
		spec.WaveLabel = DefaultWaveLabel
	}
	ro := Rollout{Source: spec.Source, Revision: heads[spec.Source], At: now}
	index := map[string]int{}
	for i, w := range spec.Waves {
		ro.Waves = append(ro.Waves, Wave{Name: w, Ref: spec.WaveRef(w), Revision: heads[spec.WaveRef(w)], Hosts: []WaveHost{},
			Budget: spec.MaxUnavailable, Counts: map[string]int{}})
		index[w] = i
	}
	for _, a := range agents {
		ans := answers[a]
		h := WaveHost{Agent: a}
		if ans.Status == nil {
			h.State, h.Reason = HostUnavailable, "unreachable"
			if ans.Err != nil {
				h.Reason = "unreachable: " + ans.Err.Error()
			}
		} else {
			h.Host = ans.Status.Host
			if r := ans.Status.Revision; r != nil {
				h.Revision = r.ID
			}
		}
		wave := ""
		if ans.Status != nil {
			wave = ans.Status.Labels[spec.WaveLabel]
		}
		i, ok := index[wave]
		if !ok {
			if ans.Status == nil {
				// An agent that does not answer has no known wave: it
				// counts against every wave's budget rather than none.
				for j := range ro.Waves {
					ro.Waves[j].Hosts = append(ro.Waves[j].Hosts, h)
				}
				continue
			}
			h.State, h.Reason = HostProgressing, fmt.Sprintf("label %s=%q names no wave of the rollout", spec.WaveLabel, wave)
			ro.Unassigned = append(ro.Unassigned, h)
			continue
		}
		w := &ro.Waves[i]
		h.State, h.Reason = JudgeHost(ans.Status, w.Revision, spec.Soak, now)
		if w.Revision == "" {
			h.State, h.Reason = HostProgressing, "its wave's branch "+w.Ref+" does not exist yet"
		}
		w.Hosts = append(w.Hosts, h)
	}
	for i := range ro.Waves {
		judgeWave(&ro.Waves[i])
	}
	// Which branches move: each wave follows the one before it (the first,
	// the source) once that one soaked on what it runs.
	for i := range ro.Waves {
		w := &ro.Waves[i]
		input, inputName := ro.Revision, spec.Source
		if i > 0 {
			prev := &ro.Waves[i-1]
			input, inputName = prev.Revision, prev.Ref
			if input != "" && input != w.Revision && prev.State != WaveSoaked {
				w.Blocked = fmt.Sprintf("waits for wave %s (%s) to soak on %s", prev.Name, prev.State, Short(input))
				continue
			}
		}
		if input == "" || input == w.Revision {
			continue
		}
		if w.Revision != "" {
			ok, err := descends(input, w.Revision)
			if err != nil || !ok {
				w.Blocked = fmt.Sprintf("%s (%s) does not descend from %s: not a fast-forward", inputName, Short(input), Short(w.Revision))
				if err != nil {
					w.Blocked += ": " + err.Error()
				}
				continue
			}
		}
		w.Promote = &Promotion{Ref: w.Ref, From: w.Revision, To: input}
	}
	ro.Done = ro.Revision != ""
	for _, w := range ro.Waves {
		if w.State == WaveHalted {
			ro.Halted = true
		}
		if w.Revision != ro.Revision || w.State != WaveSoaked {
			ro.Done = false
		}
	}
	return ro
}

// judgeWave sets a wave's state from its hosts': a halted host halts it;
// more unavailable hosts than the budget halt it too; otherwise it is as
// far as its slowest host.
func judgeWave(w *Wave) {
	unavailable := 0
	var firstUnavailable *WaveHost
	for i := range w.Hosts {
		h := &w.Hosts[i]
		w.Counts[string(h.State)]++
		switch h.State {
		case HostHalted:
			if w.Halt == nil {
				w.Halt = &HostHalt{Host: hostName(*h), Reason: h.Reason}
			}
		case HostUnavailable:
			unavailable++
			if firstUnavailable == nil {
				firstUnavailable = h
			}
		}
	}
	switch {
	case w.Halt != nil:
		w.State, w.Reason = WaveHalted, "host "+w.Halt.Host+": "+w.Halt.Reason
	case unavailable > w.Budget:
		w.Halt = &HostHalt{Host: hostName(*firstUnavailable), Reason: firstUnavailable.Reason}
		w.State, w.Reason = WaveHalted, fmt.Sprintf("%d host(s) unavailable, more than --max-unavailable %d: host %s: %s",
			unavailable, w.Budget, w.Halt.Host, w.Halt.Reason)
	case len(w.Hosts) == unavailable:
		w.State, w.Reason = WaveHalted, "no host reports this wave"
		w.Halt = &HostHalt{Reason: w.Reason}
		if firstUnavailable != nil {
			w.Halt.Host = hostName(*firstUnavailable)
		}
	case w.Counts[string(HostProgressing)] > 0:
		w.State = WaveProgressing
	case w.Counts[string(HostSoaking)] > 0:
		w.State = WaveSoaking
	default:
		w.State = WaveSoaked
	}
	slices.SortStableFunc(w.Hosts, func(a, b WaveHost) int { return strings.Compare(hostName(a), hostName(b)) })
}

func hostName(h WaveHost) string {
	if h.Host != "" {
		return h.Host
	}
	return h.Agent
}

// AddRollout puts each host's wave and rollout state into the report: from
// ro when a rollout was judged (its wave's revision is the target), else
// from the host's own status alone (the revision it runs is the target).
func (rep *Report) AddRollout(answers map[string]Answer, ro *Rollout, label string, soak time.Duration) {
	if label == "" {
		label = DefaultWaveLabel
	}
	byAgent := map[string]WaveHost{}
	if ro != nil {
		for _, w := range ro.Waves {
			for _, h := range w.Hosts {
				byAgent[h.Agent] = h
			}
		}
		for _, h := range ro.Unassigned {
			byAgent[h.Agent] = h
		}
		rep.Rollout = ro
	}
	for i := range rep.Hosts {
		h := &rep.Hosts[i]
		st := answers[h.Agent].Status
		if st != nil {
			h.Wave = st.Labels[label]
		}
		if wh, ok := byAgent[h.Agent]; ok {
			h.Rollout, h.RolloutReason = wh.State, wh.Reason
			continue
		}
		h.Rollout, h.RolloutReason = JudgeHost(st, "", soak, rep.At)
	}
}

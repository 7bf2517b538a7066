package fleet

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

// Host is one agent as the fleet view sees it.
type Host struct {
	Agent       string    `json:"agent"` // the address asked
	Host        string    `json:"host,omitempty"`
	Reachable   bool      `json:"reachable"`
	Error       string    `json:"error,omitempty"`
	Revision    string    `json:"revision,omitempty"`
	RevisionAt  time.Time `json:"revisionTime,omitzero"` // commit time
	Message     string    `json:"message,omitempty"`
	InSync      bool      `json:"inSync"`
	OnRevision  bool      `json:"onRevision"` // runs the revision the fleet is judged against
	Converged   bool      `json:"converged"`  // reachable, in sync and on that revision
	Maintenance bool      `json:"maintenance"`
	Drift       int       `json:"drift"`
	Refused     string    `json:"refused,omitempty"` // a revision it refused
	LastPass    time.Time `json:"lastPass,omitzero"`
	LastResult  string    `json:"lastResult,omitempty"`
	// Wave is the host's rollout wave (its label DefaultWaveLabel, or
	// --wave-label); Rollout says where it stands in it (progressing,
	// soaking, soaked, halted, unavailable) and RolloutReason why.
	Wave          string    `json:"wave,omitempty"`
	Rollout       HostState `json:"rollout,omitempty"`
	RolloutReason string    `json:"rolloutReason,omitempty"`
	State         string    `json:"state"` // one of the State constants
}

// Report is the whole fleet.
type Report struct {
	Revision  string    `json:"revision"` // judged against: given, or the newest seen
	Hosts     []Host    `json:"hosts"`
	Converged bool      `json:"converged"` // every agent reachable and converged on Revision
	At        time.Time `json:"at"`
	// Rollout is the rollout in waves, when one is asked about (--waves).
	Rollout *Rollout `json:"rollout,omitempty"`
	Summary Counts   `json:"summary"`
}

// The states a host is counted in, one each, the first that holds.
const (
	StateUnreachable   = "unreachable"    // not asked: refused, timed out, not scraped
	StateOtherRevision = "other-revision" // runs another revision than the fleet is judged against
	StateDrifted       = "drifted"        // on the revision, not in sync (drift left, or a pass failed)
	StateConverged     = "converged"
)

// Counts sums a report's hosts by state: the summary line a person reads
// first when there are a thousand of them.
type Counts struct {
	Agents        int `json:"agents"`
	Converged     int `json:"converged"`
	Drifted       int `json:"drifted"`
	OtherRevision int `json:"otherRevision"`
	Unreachable   int `json:"unreachable"`
}

// ParseAgents reads agent addresses from a comma-separated list, or from a
// file (one per line, # comments) when the argument names one.
func ParseAgents(arg string) ([]string, error) {
	text := arg
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		b, err := os.ReadFile(arg)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, a := range strings.Split(line, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no agent addresses in %q", arg)
	}
	return out, nil
}

// Answer is what one agent said, or why it could not be asked.
type Answer struct {
	Status *status.Status
	Err    error
}

// Cache keeps the last report for a while, so page views and polls of
// `fleet serve` do not each fan out to every agent.
type Cache struct {
	TTL     time.Duration
	Collect func(context.Context) (Report, error)

	mu   sync.Mutex
	at   time.Time
	last Report
}

// Report returns the cached report when it is younger than TTL, or a new
// one. Callers at the same moment wait for one collection.
func (c *Cache) Report(ctx context.Context, now time.Time) (Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now.Sub(c.at) < c.TTL {
		return c.last, nil
	}
	rep, err := c.Collect(ctx)
	if err != nil {
		return rep, err
	}
	c.last, c.at = rep, now
	return rep, nil
}

// Summarize judges the fleet against revision (a full commit id or a
// prefix), or, when it is empty, against the newest revision any agent runs
// (by commit time). It is pure.
func Summarize(agents []string, answers map[string]Answer, revision string, now time.Time) Report {
	rep := Report{At: now}
	newest := time.Time{}
	for _, a := range agents {
		ans := answers[a]
		h := Host{Agent: a}
		if ans.Err != nil || ans.Status == nil {
			h.Error = "unreachable"
			if ans.Err != nil {
				h.Error = ans.Err.Error()
			}
			rep.Hosts = append(rep.Hosts, h)
			continue
		}
		st := ans.Status
		h.Host, h.Reachable = st.Host, true
		if r := st.Revision; r != nil {
			h.Revision, h.RevisionAt, h.Message = r.ID, r.Time, r.Message
			if revision == "" && r.Time.After(newest) {
				newest, rep.Revision = r.Time, r.ID
			}
		}
		if f := st.FailedRevision; f != nil {
			h.Refused = f.ID
		}
		if m := st.Maintenance; m != nil {
			h.Maintenance = m.Active
		}
		for _, d := range st.Drift {
			if d.Action != names.DriftReverted {
				h.Drift++
			}
		}
		if p := st.LastPass; p != nil {
			h.LastPass, h.LastResult = p.End, p.Result
			if h.LastPass.IsZero() {
				h.LastPass = p.Start
			}
		}
		h.InSync = conditionTrue(st, names.ConditionReady) && conditionTrue(st, names.ConditionConverged) && h.Drift == 0
		rep.Hosts = append(rep.Hosts, h)
	}
	if revision != "" {
		rep.Revision = revision
	}
	rep.Converged = len(rep.Hosts) > 0
	for i := range rep.Hosts {
		h := &rep.Hosts[i]
		h.OnRevision = h.Revision != "" && rep.Revision != "" && strings.HasPrefix(h.Revision, rep.Revision)
		h.Converged = h.Reachable && h.InSync && h.OnRevision
		if !h.Converged {
			rep.Converged = false
		}
		rep.Summary.Agents++
		switch {
		case !h.Reachable:
			h.State = StateUnreachable
			rep.Summary.Unreachable++
		case !h.OnRevision:
			h.State = StateOtherRevision
			rep.Summary.OtherRevision++
		case !h.InSync:
			h.State = StateDrifted
			rep.Summary.Drifted++
		default:
			h.State = StateConverged
			rep.Summary.Converged++
		}
	}
	sort.SliceStable(rep.Hosts, func(i, j int) bool {
		a, b := rep.Hosts[i], rep.Hosts[j]
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.Agent < b.Agent
	})
	return rep
}

func conditionTrue(st *status.Status, typ string) bool {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return false
}

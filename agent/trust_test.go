package agent

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
)

// historySource is a git source whose history the test decides.
type historySource struct {
	hist source.History
	err  error
	asks int
}

func (s *historySource) Fetch(context.Context) (source.Artifact, bool, error) {
	return source.Artifact{}, false, errors.New("not used")
}
func (s *historySource) Last(context.Context) (source.Artifact, error) {
	return source.Artifact{}, errors.New("not used")
}
func (s *historySource) String() string { return "http://git.example/repo.git" }
func (s *historySource) History(_ context.Context, req source.HistoryRequest) (source.History, error) {
	s.asks++
	if req.Base == "" {
		return source.History{Head: source.Commit{ID: req.Head}}, nil
	}
	return s.hist, s.err
}

const (
	appliedRev = "1111111111111111111111111111111111111111"
	newRev     = "2222222222222222222222222222222222222222"
)

func trustAgent(src source.Source) *Agent {
	log := slog.New(slog.DiscardHandler)
	return &Agent{
		cfg:    Config{Source: src, Trust: &trust.Policy{Mode: trust.ModeOff}, FetchTimeout: time.Second},
		log:    log,
		status: newStatusStore("h", src.String()), metrics: newMetrics(),
	}
}

func countEvents(st Status, typ string) int {
	n := 0
	for _, ev := range st.Events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

func TestJudgeRefusesWhatDoesNotDescend(t *testing.T) {
	src := &historySource{hist: source.History{Known: true, HeadBeforeBase: true, Fetches: 2}}
	a := trustAgent(src)
	p := &passRun{id: "p1", base: a.log}
	good := &GoodRevision{Revision: source.Revision{ID: appliedRev}}
	art := source.Artifact{Revision: source.Revision{ID: newRev, Message: "back"}}
	if a.judge(context.Background(), p, good, art, time.Now()) {
		t.Fatal("a revision that does not descend was accepted")
	}
	st := a.Status()
	fr := st.FailedRevision
	if fr == nil || fr.ID != newRev || fr.Cause != trust.ReasonNotDescendant || fr.Commit != newRev {
		t.Fatalf("failedRevision %+v", fr)
	}
	if got := counterValue(a.metrics.refusals.WithLabelValues(trust.ReasonNotDescendant)); got != 1 {
		t.Errorf("refusals = %v", got)
	}
	if got := counterValue(a.metrics.historyFetches); got != 2 {
		t.Errorf("history fetches = %v, want the 2 the refusal cost", got)
	}
	if countEvents(st, "revision-refused") != 1 {
		t.Errorf("events %+v", st.Events)
	}

	// Descending: accepted, an event says why.
	src.hist = source.History{Known: true, Descends: true}
	if !a.judge(context.Background(), p, good, art, time.Now()) {
		t.Fatal("a descendant was refused")
	}
	if countEvents(a.Status(), "revision-trusted") != 1 {
		t.Errorf("no revision-trusted event")
	}
	// With no revision in force there is nothing to descend from.
	src.hist = source.History{}
	if !a.judge(context.Background(), p, nil, art, time.Now()) {
		t.Fatal("a first revision was refused")
	}
}

func TestJudgeFailureIsNoVerdict(t *testing.T) {
	src := &historySource{err: errors.New("git server gone")}
	a := trustAgent(src)
	p := &passRun{id: "p1", base: a.log}
	good := &GoodRevision{Revision: source.Revision{ID: appliedRev}}
	art := source.Artifact{Revision: source.Revision{ID: newRev}}
	for i := 0; i < 3; i++ {
		if a.judge(context.Background(), p, good, art, time.Now()) {
			t.Fatal("accepted without a verdict")
		}
	}
	st := a.Status()
	if st.FailedRevision != nil {
		t.Errorf("a failure to judge refused the revision: %+v", st.FailedRevision)
	}
	if n := countEvents(st, "trust-check-failed"); n != 1 {
		t.Errorf("%d trust-check-failed events for one failing spell, want 1", n)
	}
	if conditionStatus(st, "TrustChecked") != "false" {
		t.Errorf("conditions %+v", st.Conditions)
	}
	src.err, src.hist = nil, source.History{Known: true, Descends: true}
	if !a.judge(context.Background(), p, good, art, time.Now()) {
		t.Fatal("refused once git answered")
	}
	if conditionStatus(a.Status(), "TrustChecked") != "true" {
		t.Errorf("conditions %+v", a.Status().Conditions)
	}
}

func conditionStatus(st Status, typ string) string {
	for _, c := range st.Conditions {
		if c.Type == typ {
			if c.Status {
				return "true"
			}
			return "false"
		}
	}
	return "absent"
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

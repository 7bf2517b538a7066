package agent

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

// storeWithPasses is a status store that ran n passes ("p1" .. "pn", the
// newest first in /status), each with a started and a finished event.
func storeWithPasses(n int) *statusStore {
	s := newStatusStore("h", "src")
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("p%d", i)
		s.event(status.Event{Pass: id, Revision: "r", Type: names.EventPassStarted})
		s.event(status.Event{Pass: id, Revision: "r", Type: names.EventAction, Subject: "swarm/x"})
		s.event(status.Event{Pass: id, Revision: "r", Type: names.EventPassFinished})
		s.update(func(st *status.Status) {
			st.Passes = append([]status.PassSummary{{ID: id, Revision: "r", Result: "converged"}}, st.Passes...)
			if len(st.Passes) > maxPasses {
				st.Passes = st.Passes[:maxPasses]
			}
		})
	}
	return s
}

func TestPassDetail(t *testing.T) {
	s := storeWithPasses(25)
	s.event(status.Event{Type: names.EventWebhook, Message: "outside any pass"})

	d, err := s.passDetail("p24")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range d.Events {
		if ev.Pass != "p24" {
			t.Errorf("event of pass %q in p24's detail", ev.Pass)
		}
		types = append(types, ev.Type)
	}
	if d.Pass.ID != "p24" || strings.Join(types, " ") != "pass-started action pass-finished" {
		t.Errorf("p24: %+v, events %v", d.Pass, types)
	}
	if d, err := s.passDetail("last"); err != nil || d.Pass.ID != "p25" {
		t.Errorf("last: %v %v", d.Pass.ID, err)
	}
	if d, err := s.passDetail("p9"); err != nil || d.Pass.ID != "p9" {
		t.Errorf("p9 (a unique prefix): %v %v", d.Pass.ID, err)
	}
	// p1 .. p5 are no longer among the last 20 passes.
	if _, err := s.passDetail("p3"); !errors.Is(err, errNoPass) {
		t.Errorf("p3: %v", err)
	}
	if _, err := s.passDetail("p2"); !errors.Is(err, errNoPass) || !strings.Contains(err.Error(), "names 6 passes") {
		t.Errorf("p2 is a prefix of p20..p25: %v", err)
	}
	// Their events are forgotten too; the running pass's are kept.
	s.event(status.Event{Pass: "p26", Type: names.EventPassStarted})
	s.mu.Lock()
	n := len(s.passLog.events)
	_, running := s.passLog.events["p26"]
	s.mu.Unlock()
	if n > maxPasses+1 || !running {
		t.Errorf("%d passes' events kept (running one kept: %v)", n, running)
	}
}

func TestPassDetailDropsBeyondTheCap(t *testing.T) {
	s := storeWithPasses(1)
	for i := 0; i < maxPassEvents+10; i++ {
		s.event(status.Event{Pass: "p1", Type: names.EventWaiting})
	}
	d, err := s.passDetail("p1")
	if err != nil || len(d.Events) != maxPassEvents || d.EventsDropped != 13 {
		t.Errorf("%d events, %d dropped, %v", len(d.Events), d.EventsDropped, err)
	}
}

func TestServePass(t *testing.T) {
	a := &Agent{status: storeWithPasses(3)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /passes/{id}", a.servePass)
	for path, want := range map[string]int{"/passes/p2": 200, "/passes/last": 200, "/passes/nope": 404} {
		rec := getPath(mux, path)
		if rec.Code != want {
			t.Errorf("%s: %d, want %d: %s", path, rec.Code, want, rec.Body)
		}
		if want == 200 && !strings.Contains(rec.Body.String(), `"pass-finished"`) {
			t.Errorf("%s: %s", path, rec.Body)
		}
	}
}

func TestPublishReachesSubscribersOnly(t *testing.T) {
	s := newStatusStore("h", "src")
	ch, cancel := s.subscribe()
	defer cancel()
	s.publish(status.Event{Type: names.EventResources, Subject: "swarm/x"})
	if ev := receive(t, ch, time.Second, "the published event"); ev.Type != names.EventResources {
		t.Errorf("got %+v", ev)
	}
	if st := s.snapshot(); len(st.Events) != 0 {
		t.Errorf("a published event was kept: %+v", st.Events)
	}
}

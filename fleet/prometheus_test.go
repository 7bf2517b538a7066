package fleet

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// promFixture answers /api/v1/query with a vector per metric name, in the
// shape Prometheus 2.42 answers (checked against the testbed's).
func promFixture(t *testing.T, vectors map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		for metric, v := range vectors {
			if strings.Contains(q, metric+"{") {
				_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[` + v + `]}}`))
				return
			}
		}
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPrometheusCollect(t *testing.T) {
	rev := strings.Repeat("c", 40)
	s := func(inst, labels, v string) string {
		return `{"metric":{"instance":"` + inst + `","job":"reconciler"` + labels + `},"value":[1764648000.1,"` + v + `"]}`
	}
	srv := promFixture(t, map[string]string{
		"up":                                     s("a:9440", "", "1") + "," + s("b:9440", "", "1") + "," + s("c:9440", "", "0"),
		"reconciler_host_info":                   s("a:9440", `,"host":"fp-01"`, "1") + "," + s("b:9440", `,"host":"fp-02"`, "1"),
		"reconciler_revision_info":               s("a:9440", `,"revision":"`+rev+`","ref":"refs/heads/main"`, "1") + "," + s("b:9440", `,"revision":"`+rev+`","ref":"refs/heads/main"`, "1"),
		"reconciler_revision_timestamp_seconds":  s("a:9440", "", "1764640000") + "," + s("b:9440", "", "1764640000"),
		"reconciler_maintenance":                 s("a:9440", "", "0") + "," + s("b:9440", "", "1"),
		"reconciler_drift":                       s("b:9440", "", "2"),
		"reconciler_last_pass_timestamp_seconds": s("a:9440", "", "1764647990"),
		"reconciler_last_pass_result":            s("a:9440", `,"result":"in-sync"`, "1") + "," + s("b:9440", `,"result":"in-sync"`, "1"),
	})
	agents, answers, err := Prometheus{URL: srv.URL, Timeout: 5 * time.Second}.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(agents, " ") != "a:9440 b:9440 c:9440" {
		t.Fatalf("agents %v", agents)
	}
	if !errors.Is(answers["c:9440"].Err, ErrNotScraped) {
		t.Errorf("c (up 0): %v, want ErrNotScraped", answers["c:9440"].Err)
	}
	rep := Summarize(agents, answers, "", time.Unix(1764648000, 0))
	want := Counts{Agents: 3, Converged: 1, Drifted: 1, Unreachable: 1}
	if rep.Summary != want || rep.Revision != rev {
		t.Errorf("summary %+v on %s, want %+v on %s", rep.Summary, rep.Revision, want, rev)
	}
	for _, h := range rep.Hosts {
		if h.Agent == "b:9440" && (h.Host != "fp-02" || h.Drift != 2 || !h.Maintenance) {
			t.Errorf("b: %+v", h)
		}
		if h.Agent == "a:9440" && (h.Host != "fp-01" || !h.Converged || h.LastPass.Unix() != 1764647990) {
			t.Errorf("a: %+v", h)
		}
	}
}

func TestParsePrometheusVector(t *testing.T) {
	for _, c := range []struct {
		name, body string
		ok         bool
	}{
		{"vector", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a"},"value":[1,"1"]}]}}`, true},
		{"error", `{"status":"error","errorType":"bad_data","error":"parse error"}`, false},
		{"matrix", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, false},
		{"not json", `<html>`, false},
	} {
		_, err := parsePrometheusVector([]byte(c.body), 200)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && !errors.Is(err, ErrPrometheusAnswer) {
			t.Errorf("%s: %v does not wrap ErrPrometheusAnswer", c.name, err)
		}
	}
}

// FuzzParsePrometheusVector: any answer is a vector or an error wrapping
// ErrPrometheusAnswer, never a panic; values read as numbers or NaN.
func FuzzParsePrometheusVector(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a"},"value":[1,"1"]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}`))
	f.Add([]byte(`{"status":"error"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parsePrometheusVector(b, 200)
		if err != nil {
			if !errors.Is(err, ErrPrometheusAnswer) {
				t.Fatalf("%v does not wrap ErrPrometheusAnswer", err)
			}
			return
		}
		for _, s := range v {
			_ = s.value()
		}
	})
}

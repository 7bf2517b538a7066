package compose

import (
	"testing"

	"github.com/docker/docker/api/types/container"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

func composeContainer(project, service, number string, created int64, oneoff bool) container.Summary {
	labels := map[string]string{LabelProject: project, LabelService: service, LabelNumber: number}
	if oneoff {
		labels[LabelOneoff] = "True"
	}
	return container.Summary{ID: project + service + number, Names: []string{"/" + project + "_" + service + "_" + number},
		Labels: labels, State: container.StateRunning, Created: created}
}

func TestSelectProject(t *testing.T) {
	sel := controllers.Target{Kind: controllers.KindSelector, Name: "pollers", Driver: v1.DriverCompose,
		Service: &v1.Service{Name: "pollers", Driver: v1.DriverCompose, Replicas: v1.Ptr[int32](2), Select: &v1.ServiceSelector{Project: "usm"}}}
	list := []container.Summary{
		composeContainer("usm", "poller", "1", 20, false),
		composeContainer("usm", "poller", "2", 10, false),
		composeContainer("usm", "exporter", "1", 15, false),
		composeContainer("usm", "migrate", "1", 1, true), // a one-off: not a service of the project's
		composeContainer("other", "web", "1", 5, false),
	}
	l := selectProject(sel, list)
	got := map[string]controllers.Member{}
	for _, m := range l.Members {
		got[m.Name] = m
	}
	if len(got) != 2 {
		t.Fatalf("members %+v, want poller and exporter", l.Members)
	}
	if p := got["poller"]; p.Started.Unix() != 10 || p.Live.Replicas != 2 || p.Live.Running != 2 {
		t.Errorf("poller: %+v, want started at its first container (10), 2/2 running", p)
	}
	if e := got["exporter"]; e.Started.Unix() != 15 || e.Live.Running != 1 {
		t.Errorf("exporter: %+v", e)
	}
}

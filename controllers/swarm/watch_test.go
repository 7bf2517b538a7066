package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/events"
)

func TestServiceDrift(t *testing.T) {
	ev := func(action events.Action, attrs map[string]string) events.Message {
		return events.Message{Type: events.ServiceEventType, Action: action, Actor: events.Actor{Attributes: attrs}}
	}
	for _, c := range []struct {
		name      string
		m         events.Message
		own, img  string
		ownsImage bool
		want      bool
	}{
		{"own scale", ev(events.ActionUpdate, map[string]string{"name": "a", "replicas.new": "1", "replicas.old": "3"}), "1", "", false, false},
		{"scale by hand", ev(events.ActionUpdate, map[string]string{"name": "a", "replicas.new": "3", "replicas.old": "1"}), "1", "", false, true},
		{"scale, never written", ev(events.ActionUpdate, map[string]string{"name": "a", "replicas.new": "3"}), "", "", false, true},
		{"update status only", ev(events.ActionUpdate, map[string]string{"name": "a", "updatestate.new": "completed"}), "1", "", false, false},
		{"image not owned", ev(events.ActionUpdate, map[string]string{"name": "a", "image.new": "x:2"}), "1", "", false, false},
		{"image owned, changed", ev(events.ActionUpdate, map[string]string{"name": "a", "image.new": "x:2"}), "1", "x:1", true, true},
		{"image owned, ours", ev(events.ActionUpdate, map[string]string{"name": "a", "image.new": "x:1"}), "1", "x:1", true, false},
		{"removed", ev(events.ActionRemove, map[string]string{"name": "a"}), "1", "", false, true},
		{"created", ev(events.ActionCreate, map[string]string{"name": "a"}), "", "", false, true},
	} {
		if got := serviceDrift(c.m, c.own, c.img, c.ownsImage); got != c.want {
			t.Errorf("%s: drift %v, want %v", c.name, got, c.want)
		}
	}
}

package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

func TestLowerToLocal(t *testing.T) {
	target := func(name string, replicas int32) controllers.Target {
		return controllers.Target{Kind: controllers.KindService, Name: name, Driver: v1.DriverSwarm, Replicas: replicas}
	}
	liveOfSvc := func(id string, replicas, running int32) controllers.Live {
		return controllers.Live{Exists: true, Replicas: replicas, Running: running, Raw: swarm.Service{ID: id}}
	}
	ctr := func(svc, state string) container.Summary {
		return container.Summary{State: state, Labels: map[string]string{"com.docker.swarm.service.id": svc}}
	}
	for _, c := range []struct {
		name       string
		target     controllers.Target
		live       controllers.Live
		containers []container.Summary
		want       int32
	}{
		{"container gone before the manager knows", target("proxy", 0), liveOfSvc("p", 0, 1), nil, 0},
		{"still running here too", target("proxy", 0), liveOfSvc("p", 0, 1), []container.Summary{ctr("p", "running")}, 1},
		{"only running containers count", target("proxy", 0), liveOfSvc("p", 0, 1), []container.Summary{ctr("p", "exited")}, 0},
		{"other services' containers do not count", target("proxy", 1), liveOfSvc("p", 1, 3), []container.Summary{ctr("p", "running"), ctr("q", "running"), ctr("q", "running")}, 1},
		{"never raised", target("proxy", 0), liveOfSvc("p", 0, 1), []container.Summary{ctr("p", "running"), ctr("p", "running")}, 1},
		{"no service object: left alone", target("proxy", 0), controllers.Live{Exists: true, Running: 2}, nil, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			live := map[string]controllers.Live{c.target.Subject(): c.live}
			LowerToLocal([]controllers.Target{c.target}, live, c.containers)
			if got := live[c.target.Subject()].Running; got != c.want {
				t.Errorf("running = %d, want %d", got, c.want)
			}
		})
	}
}

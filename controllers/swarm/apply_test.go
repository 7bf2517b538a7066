package swarm

import (
	"context"
	"errors"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"reconciler.dev/reconciler/controllers"
)

// What Apply writes is what Plan put in the action's Steps: the count and
// the image, not a number parsed back from the text the plan shows.
func TestApplyWritesThePlannedSteps(t *testing.T) {
	svc := service("factory-proxy", 1, 1, "local/proxy:1")
	ts := targets(declare("factory-proxy", 3, "local/proxy:2"))
	plan := Plan(ts, liveFromList(ts, listed(svc)))
	if len(plan) != 2 {
		t.Fatalf("plan %v, want replicas and image", plan)
	}
	spec := svc.Spec
	for _, a := range plan {
		a.To = "shown, not read" // Apply must not parse the display value
		if changed, err := setField(&spec, a); err != nil || !changed {
			t.Fatalf("%s: changed %v, err %v", a, changed, err)
		}
	}
	if got := *spec.Mode.Replicated.Replicas; got != 3 {
		t.Errorf("replicas %d, want 3", got)
	}
	if got := spec.TaskTemplate.ContainerSpec.Image; got != "local/proxy:2" {
		t.Errorf("image %q, want local/proxy:2", got)
	}
	a := plan[0]
	a.Steps = nil
	if _, err := setField(&spec, a); err == nil {
		t.Error("an action with no steps was applied")
	}
}

// seqAPI answers ServiceUpdate with errs in turn and ServiceInspect with
// the service at the version versions gives in turn.
type seqAPI struct {
	API
	svc      swarm.Service
	errs     []error
	versions []uint64
	updates  int
	inspects int
}

func (f *seqAPI) ServiceUpdate(_ context.Context, _ string, _ swarm.Version, _ swarm.ServiceSpec, _ swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	f.updates++
	if len(f.errs) == 0 {
		return swarm.ServiceUpdateResponse{}, nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return swarm.ServiceUpdateResponse{}, err
}

func (f *seqAPI) ServiceInspectWithRaw(context.Context, string, swarm.ServiceInspectOptions) (swarm.Service, []byte, error) {
	f.inspects++
	s := f.svc
	if len(f.versions) > 0 {
		s.Version.Index = f.versions[0]
		f.versions = f.versions[1:]
	}
	return s, nil, nil
}

// A failed update is retried only when the service's version moved since
// the read it was built on (someone else wrote: "out of sequence"), judged
// from state, never from the error's text; any other failure is returned.
func TestApplyRetriesOnlyWhenTheVersionMoved(t *testing.T) {
	boom := errors.New("daemon said no")
	for _, tc := range []struct {
		name              string
		errs              []error
		versions          []uint64
		wantErr           bool
		updates, inspects int
	}{
		{name: "first update lands", updates: 1},
		{name: "someone else wrote in between: re-read and retry", errs: []error{boom}, versions: []uint64{11}, updates: 2, inspects: 1},
		{name: "version unchanged: the failure is returned", errs: []error{boom}, versions: []uint64{10}, wantErr: true, updates: 1, inspects: 1},
		{name: "retries are bounded", errs: []error{boom, boom, boom, boom, boom}, versions: []uint64{11, 12, 13, 14}, wantErr: true, updates: maxSequenceRetries + 1, inspects: maxSequenceRetries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := service("factory-proxy", 1, 1, "local/proxy:1")
			svc.Version.Index = 10
			ts := targets(declare("factory-proxy", 3, "local/proxy:1"))
			plan := Plan(ts, liveFromList(ts, listed(svc)))
			if len(plan) != 1 {
				t.Fatalf("plan %v, want one replicas action", plan)
			}
			api := &seqAPI{svc: svc, errs: tc.errs, versions: tc.versions}
			d := &Driver{API: api}
			err := d.Apply(context.Background(), plan[0], ts[0], controllers.Live{Raw: one(svc)})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, boom) {
				t.Errorf("err %v does not wrap the daemon's", err)
			}
			if api.updates != tc.updates || api.inspects != tc.inspects {
				t.Errorf("%d updates, %d inspects; want %d, %d", api.updates, api.inspects, tc.updates, tc.inspects)
			}
		})
	}
}

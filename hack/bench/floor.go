package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// The floor: what the systems themselves allow, measured by a minimal
// client in the same run as the reconciler and its runbook. A floor does
// only the calls that change state and the waits that say they took: no
// process start, no git, no parse, no plan, no reads but the awaiting ones.
// Its connections (Docker, the system bus) are open before the clock
// starts. Reconciler / floor is the price of everything the reconciler
// does besides the physics; the goal is at most 1.3x.

// floorPoll is how often a floor looks while it waits: the engine's first
// rhythm (controllers/engine/wait.go: every 100 ms in a wait's first 3 s),
// so a floor is awaited the way the engine awaits.
const floorPoll = 100 * time.Millisecond

// floorScale sets the services' replicas with one ServiceUpdate each, all
// at once, then waits until the manager counts each service's running
// tasks at the new figure (the engine's test of ready and of drained). It
// returns the time from the first write to the manager's count.
func (e *env) floorScale(ctx context.Context, names []string, replicas uint64) (time.Duration, error) {
	// The reads the updates are built on come before the clock: a client
	// that knows the services knows their versions.
	specs := make([]swarm.Service, len(names))
	for i, name := range names {
		s, _, err := e.docker.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		if err != nil {
			return 0, fmt.Errorf("floor: inspect %s: %w", name, err)
		}
		specs[i] = s
	}
	start := time.Now()
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := specs[i]
			n := replicas
			s.Spec.Mode.Replicated.Replicas = &n
			_, errs[i] = e.docker.ServiceUpdate(ctx, s.ID, s.Version, s.Spec, swarm.ServiceUpdateOptions{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("floor: update %s: %w", names[i], err)
		}
	}
	args := filters.NewArgs()
	for _, n := range names {
		args.Add("name", n)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	deadline := start.Add(3 * time.Minute)
	for {
		list, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Status: true, Filters: args})
		if err != nil {
			return 0, fmt.Errorf("floor: list: %w", err)
		}
		done := 0
		for _, s := range list {
			if want[s.Spec.Name] && s.ServiceStatus != nil && s.ServiceStatus.RunningTasks == replicas &&
				s.Spec.Mode.Replicated.Replicas != nil && *s.Spec.Mode.Replicated.Replicas == replicas {
				done++
			}
		}
		if done == len(names) {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("floor: %d of %d services at %d running within 3m", done, len(names), replicas)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(floorPoll):
		}
	}
}

// floorBus is a minimal D-Bus client of systemd, on the real system bus
// (not through the counting proxy: the floor's calls are not the
// reconciler's).
type floorBus struct{ c *sd.Conn }

func (e *env) floorBus(ctx context.Context) (*floorBus, error) {
	conn, err := sd.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("floor: system bus: %w", err)
	}
	e.cleanup(conn.Close)
	return &floorBus{c: conn}, nil
}

// job runs StopUnit or StartUnit and waits for systemd's job result.
func (f *floorBus) job(ctx context.Context, start bool, unit string) error {
	ch := make(chan string, 1)
	var err error
	if start {
		_, err = f.c.StartUnitContext(ctx, unit, "replace", ch)
	} else {
		_, err = f.c.StopUnitContext(ctx, unit, "replace", ch)
	}
	if err != nil {
		return fmt.Errorf("floor: %s: %w", unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("floor: %s: job %q", unit, res)
		}
		return nil
	case <-time.After(time.Minute):
		return fmt.Errorf("floor: %s: job did not finish within 1m", unit)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enable enables or disables a unit file and reloads, as `systemctl
// enable|disable` does (and the systemd driver).
func (f *floorBus) enable(ctx context.Context, on bool, unit string) error {
	var err error
	if on {
		_, _, err = f.c.EnableUnitFilesContext(ctx, []string{unit}, false, false)
	} else {
		_, err = f.c.DisableUnitFilesContext(ctx, []string{unit}, false)
	}
	if err != nil {
		return fmt.Errorf("floor: enable=%v %s: %w", on, unit, err)
	}
	return f.c.ReloadContext(ctx)
}

// floorLsRefs is one protocol v2 ls-refs for one ref by a minimal client:
// one POST to git-upload-pack, the answer read to its end.
func floorLsRefs(ctx context.Context, repoURL, ref string) error {
	var body bytes.Buffer
	pkt := func(s string) { fmt.Fprintf(&body, "%04x%s", len(s)+4, s) }
	pkt("command=ls-refs\n")
	body.WriteString("0001")
	pkt("ref-prefix " + ref + "\n")
	body.WriteString("0000")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, repoURL+"/git-upload-pack", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("Accept", "application/x-git-upload-pack-result")
	req.Header.Set("Git-Protocol", "version=2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("floor: ls-refs: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("floor: ls-refs: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(ref)) {
		return fmt.Errorf("floor: ls-refs: %s: %q", resp.Status, out)
	}
	return nil
}

// fmtFloor is the floor column: the floor's figure, and reconciler / floor
// with the spread of the per-round ratios (p.a: the reconciler, p.b: the
// floor).
func fmtFloor(p paired, unit func(sample) string) (floor, ratio string) {
	m, lo, hi := paired{a: p.b, b: p.a}.ratio()
	return unit(p.b), fmt.Sprintf("%sx (%s–%s)", sig(m), sig(lo), sig(hi))
}

// floorVerdict is the target column's word on reconciler / floor.
func floorVerdict(p paired) string {
	m, _, _ := paired{a: p.b, b: p.a}.ratio()
	return verdict(m <= 1.3, "≤ 1.3x floor", fmt.Sprintf("%sx", sig(m)))
}

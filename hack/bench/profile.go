package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/docker/docker/client"

	"reconciler.dev/reconciler/agent"
	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/swarm"
	"reconciler.dev/reconciler/controllers/systemd"
	"reconciler.dev/reconciler/desired/source"
)

// profileAgent runs the agent in this process, wired as `reconciler run`
// wires its swarm and systemd drivers, at n declared services, idling at
// --interval 1s for d, under the CPU profiler; then it writes a heap
// profile. The binary serves no /debug/pprof, so this is how the idle pass
// of scenarios 3 and 4 is profiled: the same agent, engine, drivers and
// source code, without the process around them.
func (b *bench) profileAgent(ctx context.Context, n int, d time.Duration, dir string) error {
	e := b.e
	if err := e.createServices(ctx, benchServices(n), 0); err != nil {
		return err
	}
	repo, _, err := b.idleRepo(n)
	if err != nil {
		return err
	}
	state := filepath.Join(e.work, "profile-state")
	src, err := source.Open(source.Options{URL: repo.httpURL, CacheDir: filepath.Join(state, "source")})
	if err != nil {
		return err
	}
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer docker.Close()
	sysd := systemd.New(nil)
	defer sysd.Close()
	eng := &engine.Engine{Drivers: map[v1.Driver]controllers.Driver{
		v1.DriverSwarm: &swarm.Driver{API: swarm.NewClient(docker)}, v1.DriverSystemd: sysd,
	}}
	a, err := agent.New(agent.Config{Source: src, Host: "bench-01", Engine: eng, StateDir: state, Interval: time.Second,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cpuFile, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpuFile.Close()
	actx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := pprof.StartCPUProfile(cpuFile); err != nil {
		return err
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// The live heap between two passes: what an idle agent keeps.
	liveDone := make(chan error, 1)
	go func() {
		select {
		case <-actx.Done():
			liveDone <- nil
			return
		case <-time.After(d - 1500*time.Millisecond):
		}
		runtime.GC()
		f, err := os.Create(filepath.Join(dir, "heap-live.pprof"))
		if err == nil {
			err = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
		liveDone <- err
	}()
	runErr := a.Run(actx)
	if err := <-liveDone; err != nil {
		return err
	}
	pprof.StopCPUProfile()
	runtime.ReadMemStats(&after)
	st := a.Status()
	passes := len(st.Passes)
	e.logf("profile: %d passes recorded in /status, %.1f MiB allocated in all (%.2f MiB per second), heap in use %.1f MiB",
		passes, float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), float64(after.TotalAlloc-before.TotalAlloc)/(1<<20)/d.Seconds(),
		float64(after.HeapInuse)/(1<<20))
	runtime.GC()
	heap, err := os.Create(filepath.Join(dir, "heap.pprof"))
	if err != nil {
		return err
	}
	defer heap.Close()
	if err := pprof.Lookup("allocs").WriteTo(heap, 0); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("agent: %w", runErr)
	}
	return nil
}

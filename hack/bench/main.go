// Command bench measures the reconciler against what operators do today, on
// the real testbed, and prints one table (`make bench`; docs/BENCHMARKS.md
// says what each scenario measures and how).
//
// Every timed figure is measured side by side with its baseline in the same
// run, alternating reconciler and baseline (A B A B ...), -pairs pairs, and
// shown as the median with the spread (min–max) of the runs; the ratio is
// baseline over reconciler, with the spread of the per-pair ratios. Call
// counts come from counting proxies on the Docker socket and the system bus
// (internal/callcount) and from the git server's own counters, never from
// the reconciler's word. Nothing here is a pass/fail test: the bench fails
// only when it cannot measure (a run that did not converge, a wrong order,
// a write count that differs from the changed count).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	pairs     int
	only      map[int]bool
	sizes2    []int
	sizes3    []int
	idle      time.Duration
	doc, plot string
	// profile, when set, runs the agent in-process under the profiler
	// instead of the scenarios (profile.go).
	profile    string
	profileN   int
	profileFor time.Duration
}

// row is one line of the table.
type row struct {
	scenario, reconciler, baseline, ratio, calls, target string
}

// bench is one run of the benchmarks.
type bench struct {
	e     *env
	cfg   config
	rows  []row
	notes []string
	// s2 holds scenario 2's wall times by service count, for the plot.
	s2 map[int]paired
}

func (b *bench) add(r row)                    { b.rows = append(b.rows, r) }
func (b *bench) note(format string, a ...any) { b.notes = append(b.notes, fmt.Sprintf(format, a...)) }

func main() {
	var cfg config
	var only, sizes2, sizes3 string
	flag.IntVar(&cfg.pairs, "pairs", 5, "reconciler/baseline pairs per timed figure (at least 5 for published figures)")
	flag.StringVar(&only, "scenarios", "1,2,3,4,5,6,7", "scenarios to run")
	flag.StringVar(&sizes2, "sizes2", "50,200", "scenario 2: declared swarm services")
	flag.StringVar(&sizes3, "sizes3", "10,200,1000", "scenario 3: declared services (the largest is also scenario 4's)")
	flag.DurationVar(&cfg.idle, "idle", 2*time.Minute, "scenario 4: how long the agent idles")
	flag.StringVar(&cfg.doc, "doc", "", "update the results section of this markdown file (docs/BENCHMARKS.md)")
	flag.StringVar(&cfg.plot, "plot", "", "write scenario 2's plot to this PNG (docs/bench-scenario2.png)")
	flag.StringVar(&cfg.profile, "profile", "", "instead of the scenarios: profile the idle agent in-process, writing cpu.pprof and heap.pprof (allocations) to this folder")
	flag.IntVar(&cfg.profileN, "profile-services", 1000, "-profile: declared swarm services")
	flag.DurationVar(&cfg.profileFor, "profile-for", 30*time.Second, "-profile: how long the agent idles at --interval 1s")
	flag.Parse()
	cfg.only = map[int]bool{}
	for _, s := range strings.Split(only, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fatalf("-scenarios %q: %v", only, err)
		}
		cfg.only[n] = true
	}
	var err error
	if cfg.sizes2, err = ints(sizes2); err != nil {
		fatalf("-sizes2: %v", err)
	}
	if cfg.sizes3, err = ints(sizes3); err != nil {
		fatalf("-sizes3: %v", err)
	}
	root, err := repoRoot()
	if err != nil {
		fatalf("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	e, err := newEnv(root)
	if err != nil {
		fatalf("%v", err)
	}
	b := &bench{e: e, cfg: cfg, s2: map[int]paired{}}
	start := time.Now()
	var runErr error
	if cfg.profile != "" {
		runErr = b.profileAgent(ctx, cfg.profileN, cfg.profileFor, cfg.profile)
	} else {
		runErr = b.run(ctx)
	}
	// Clean up even after a failure or ^C: a fresh context for it.
	cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	if err := e.removeBenchServices(cctx); err != nil {
		e.logf("cleanup: %v", err)
	}
	cancel()
	e.close()

	table := b.table()
	fmt.Println()
	fmt.Print(table)
	for _, n := range b.notes {
		fmt.Println("- " + n)
	}
	fmt.Printf("\n(%s; %d pairs per timed figure)\n", time.Since(start).Round(time.Second), cfg.pairs)
	if runErr != nil {
		fatalf("%v", runErr)
	}
	if (cfg.doc != "" || cfg.plot != "") && (len(cfg.only) < 6 || cfg.pairs < 5 || cfg.profile != "") {
		e.logf("a partial run (-scenarios, -pairs < 5 or -profile): %s and %s are left as they are", cfg.doc, cfg.plot)
		return
	}
	if cfg.plot != "" && len(b.s2) > 0 {
		if err := b.writePlot(filepath.Join(root, cfg.plot)); err != nil {
			fatalf("plot: %v", err)
		}
		e.logf("wrote %s", cfg.plot)
	}
	if cfg.doc != "" {
		if err := b.writeDoc(filepath.Join(root, cfg.doc), table, time.Since(start)); err != nil {
			fatalf("doc: %v", err)
		}
		e.logf("updated %s", cfg.doc)
	}
}

func (b *bench) run(ctx context.Context) error {
	e := b.e
	largest := 0
	if b.cfg.only[2] {
		largest = max(largest, slices.Max(b.cfg.sizes2))
	}
	if b.cfg.only[3] || b.cfg.only[4] {
		largest = max(largest, slices.Max(b.cfg.sizes3))
	}
	if b.cfg.only[6] {
		largest = max(largest, 10)
	}
	if largest > 0 {
		start := time.Now()
		if err := e.createServices(ctx, benchServices(largest), 0); err != nil {
			return err
		}
		e.logf("created %d swarm services (0 replicas) in %s", largest, time.Since(start).Round(100*time.Millisecond))
	}
	steps := []struct {
		n  int
		fn func(context.Context) error
	}{
		{1, b.scenario1}, {2, b.scenario2}, {3, b.scenario3}, {4, b.scenario4}, {5, b.scenario5}, {6, b.scenario6}, {7, b.scenario7},
	}
	for _, s := range steps {
		if !b.cfg.only[s.n] {
			continue
		}
		start := time.Now()
		e.logf("scenario %d", s.n)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("scenario %d: %w", s.n, err)
		}
		e.logf("scenario %d done in %s", s.n, time.Since(start).Round(time.Second))
	}
	return nil
}

// benchServices names the bench's swarm services.
func benchServices(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bench-svc-%04d", i)
	}
	return out
}

// hostDoc is a Host document declaring swarm services (name -> replicas),
// in the given order, and any extra YAML for units.
func hostDoc(host string, names []string, replicas func(i int) int, units string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: %s\nspec:\n  services:\n", host)
	for i, n := range names {
		fmt.Fprintf(&sb, "    - name: %s\n      replicas: %d\n", n, replicas(i))
	}
	sb.WriteString(units)
	return sb.String()
}

func (b *bench) table() string {
	var sb strings.Builder
	sb.WriteString("| scenario | reconciler | baseline | ratio (baseline / reconciler) | calls | target |\n")
	sb.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range b.rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s |\n", r.scenario, r.reconciler, r.baseline, r.ratio, r.calls, r.target)
	}
	return sb.String()
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// repoRoot is the module root: the working directory or one above it that
// holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	os.Exit(1)
}

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
	"cmp"
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
	// partialPlot: where a partial run writes its plots (never docs/).
	partialPlot string
	// profile, when set, runs the agent in-process under the profiler
	// instead of the scenarios (profile.go).
	profile    string
	profileN   int
	profileFor time.Duration
}

// row is one line of the table.
type row struct {
	scenario, reconciler, baseline, ratio, calls, target string
	// floor and floorRatio: the floor's figure (floor.go) and reconciler /
	// floor; empty where the scenario has none.
	floor, floorRatio string
}

// scenario is one numbered scenario of the bench. Each scenario's file
// registers itself (register, in an init function), so a new scenario is a
// new file and main.go need not change.
type scenario struct {
	n int
	// services is how many bench swarm services (bench-svc-NNNN, 0
	// replicas) the scenario needs made before it runs.
	services func(cfg config) int
	run      func(b *bench, ctx context.Context) error
}

var scenarios []scenario

func register(n int, services func(config) int, run func(*bench, context.Context) error) {
	scenarios = append(scenarios, scenario{n: n, services: services, run: run})
	slices.SortFunc(scenarios, func(a, b scenario) int { return a.n - b.n })
}

// allScenarios is every registered scenario's number, "1,2,...".
func allScenarios() string {
	var ns []string
	for _, s := range scenarios {
		ns = append(ns, strconv.Itoa(s.n))
	}
	return strings.Join(ns, ",")
}

// bench is one run of the benchmarks.
type bench struct {
	e     *env
	cfg   config
	rows  []row
	notes []string
	// s2 holds scenario 2's wall times by service count (a: reconciler,
	// b: runbook) and its floor's, for the plot.
	s2, s2floor map[int]paired
	// flip holds scenario 1's times, enter and leave: reconciler, floor,
	// runbook, for the plot.
	flip map[string]flipTimes
}

type flipTimes struct{ reconciler, floor, runbook sample }

func (b *bench) add(r row)                    { b.rows = append(b.rows, r) }
func (b *bench) note(format string, a ...any) { b.notes = append(b.notes, fmt.Sprintf(format, a...)) }

func main() {
	var cfg config
	var only, sizes2, sizes3 string
	flag.IntVar(&cfg.pairs, "pairs", 5, "reconciler/baseline pairs per timed figure (at least 5 for published figures)")
	flag.StringVar(&only, "scenarios", allScenarios(), "scenarios to run")
	flag.StringVar(&sizes2, "sizes2", "50,200", "scenario 2: declared swarm services")
	flag.StringVar(&sizes3, "sizes3", "10,200,1000", "scenario 3: declared services (the largest is also scenario 4's)")
	flag.DurationVar(&cfg.idle, "idle", 2*time.Minute, "scenario 4: how long the agent idles")
	flag.StringVar(&cfg.doc, "doc", "", "update the results section of this markdown file (docs/BENCHMARKS.md)")
	flag.StringVar(&cfg.plot, "plot", "", "write the plots to PNGs named after this prefix: PREFIX-flip.png and PREFIX-services.png (docs/bench)")
	flag.StringVar(&cfg.partialPlot, "partial-plot", "", "a partial run: write its plots to PNGs named after this prefix (outside docs/, to look at them)")
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
	// One bench at a time on the testbed: each one's set-up and clean-up
	// remove every bench-labelled service, the other's too.
	// The e2e tests' order: "daemons" (shared; a fault test that kills
	// dockerd takes it exclusively) before any part.
	undaemons, err := e.lockShared("daemons")
	if err != nil {
		fatalf("%v", err)
	}
	e.cleanup(undaemons)
	unlock, err := e.lock("bench")
	if err != nil {
		fatalf("%v", err)
	}
	e.cleanup(unlock)
	b := &bench{e: e, cfg: cfg, s2: map[int]paired{}, s2floor: map[int]paired{}, flip: map[string]flipTimes{}}
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
	partial := len(cfg.only) < len(scenarios) || cfg.pairs < 5 || cfg.profile != ""
	if partial && cfg.partialPlot != "" {
		written, err := b.writePlots(cfg.partialPlot)
		if err != nil {
			fatalf("plot: %v", err)
		}
		e.logf("wrote %s (a partial run's plots)", strings.Join(written, ", "))
	}
	if (cfg.doc != "" || cfg.plot != "") && partial {
		e.logf("a partial run (-scenarios, -pairs < 5 or -profile): %s and %s are left as they are", cfg.doc, cfg.plot)
		return
	}
	if cfg.plot != "" {
		written, err := b.writePlots(filepath.Join(root, cfg.plot))
		if err != nil {
			fatalf("plot: %v", err)
		}
		e.logf("wrote %s", strings.Join(written, ", "))
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
	for _, s := range scenarios {
		if b.cfg.only[s.n] && s.services != nil {
			largest = max(largest, s.services(b.cfg))
		}
	}
	if largest > 0 {
		start := time.Now()
		if err := e.createServices(ctx, benchServices(largest), 0); err != nil {
			return err
		}
		e.logf("created %d swarm services (0 replicas) in %s", largest, time.Since(start).Round(100*time.Millisecond))
	}
	for _, s := range scenarios {
		if !b.cfg.only[s.n] {
			continue
		}
		start := time.Now()
		e.logf("scenario %d", s.n)
		if err := s.run(b, ctx); err != nil {
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
	sb.WriteString("| scenario | reconciler | floor | reconciler / floor (goal ≤ 1.3x) | baseline (runbook) | baseline / reconciler | calls | target |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range b.rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.scenario, r.reconciler, cmp.Or(r.floor, "—"), cmp.Or(r.floorRatio, "—"),
			r.baseline, r.ratio, r.calls, r.target)
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

package engine

import (
	"fmt"
	"sort"

	"reconciler.dev/reconciler/controllers"
)

// Stage is a set of actions that run together. Stages run one after
// another; a stage starts only when the one before it is drained (down) or
// ready (up).
type Stage struct {
	Number  int                  `json:"stage"`
	Phase   controllers.Phase    `json:"phase"`
	Title   string               `json:"title"`
	Actions []controllers.Action `json:"actions"`
}

// graph holds the dependsOn edges between declared services.
type graph struct {
	deps       map[string][]string // service -> services it depends on
	dependents map[string][]string // service -> services that depend on it
	depth      map[string]int      // longest dependsOn chain below a service
	height     map[string]int      // longest chain of dependents above it
}

func newGraph(targets []controllers.Target) *graph {
	g := &graph{deps: map[string][]string{}, dependents: map[string][]string{}, depth: map[string]int{}, height: map[string]int{}}
	declared := map[string]bool{}
	for _, t := range targets {
		if t.Kind == controllers.KindService {
			declared[t.Name] = true
		}
	}
	for _, t := range targets {
		if t.Kind != controllers.KindService {
			continue
		}
		for _, d := range t.Service.DependsOn {
			if declared[d] && d != t.Name {
				g.deps[t.Name] = append(g.deps[t.Name], d)
				g.dependents[d] = append(g.dependents[d], t.Name)
			}
		}
	}
	for name := range declared {
		g.level(name, g.deps, g.depth, map[string]bool{})
		g.level(name, g.dependents, g.height, map[string]bool{})
	}
	return g
}

// level is the longest path from name along edges; validation rejects
// cycles, and the visiting set keeps a cycle from recursing forever anyway.
func (g *graph) level(name string, edges map[string][]string, memo map[string]int, visiting map[string]bool) int {
	if v, ok := memo[name]; ok {
		return v
	}
	if visiting[name] {
		return 0
	}
	visiting[name] = true
	l := 0
	for _, next := range edges[name] {
		l = max(l, 1+g.level(next, edges, memo, visiting))
	}
	delete(visiting, name)
	memo[name] = l
	return l
}

// upstream returns every service name reaches along edges, transitively.
func (g *graph) reach(name string, edges map[string][]string) []string {
	seen := map[string]bool{}
	var out []string
	var walk func(string)
	walk = func(n string) {
		for _, m := range edges[n] {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
				walk(m)
			}
		}
	}
	walk(name)
	sort.Strings(out)
	return out
}

// stage keys order stages: down units, down services by height (no
// dependents first), up services by depth (no dependencies first), up units.
const (
	keyDownUnits    = 0
	keyDownServices = 1
	keyUpServices   = 100000
	keyUpUnits      = 200000
)

// Order puts every action into a stage and numbers the stages in the order
// they run. It is pure: the same targets and actions give the same stages.
func Order(targets []controllers.Target, actions []controllers.Action) []Stage {
	g := newGraph(targets)
	kindOf := map[string]controllers.ObjectKind{}
	for _, t := range targets {
		kindOf[t.Subject()] = t.Kind
	}
	byKey := map[int][]controllers.Action{}
	for _, a := range actions {
		a.Phase = a.Op.Phase()
		var key int
		switch {
		case a.Kind == controllers.KindUnit && a.Phase == controllers.PhaseDown:
			key = keyDownUnits
		case a.Kind == controllers.KindUnit:
			key = keyUpUnits
		case a.Phase == controllers.PhaseDown:
			key = keyDownServices + g.height[a.Name]
		default:
			key = keyUpServices + g.depth[a.Name]
		}
		byKey[key] = append(byKey[key], a)
	}
	keys := make([]int, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	stages := make([]Stage, 0, len(keys))
	for i, k := range keys {
		acts := byKey[k]
		sort.SliceStable(acts, func(x, y int) bool { return acts[x].Subject < acts[y].Subject })
		for j := range acts {
			acts[j].Stage = i + 1
		}
		st := Stage{Number: i + 1, Phase: acts[0].Phase, Actions: acts}
		switch {
		case k == keyDownUnits:
			st.Title = "stop units"
		case k == keyUpUnits:
			st.Title = "start units"
		case k < keyUpServices:
			st.Title = fmt.Sprintf("scale down, dependents-first level %d", k-keyDownServices)
		default:
			st.Title = fmt.Sprintf("scale up, dependencies-first level %d", k-keyUpServices)
		}
		stages = append(stages, st)
	}
	return stages
}

package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// sample is one figure measured several times.
type sample []float64

func (s sample) sorted() []float64 {
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	return c
}

func (s sample) median() float64 {
	c := s.sorted()
	n := len(c)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

func (s sample) min() float64 { return s.sorted()[0] }
func (s sample) max() float64 { c := s.sorted(); return c[len(c)-1] }

// paired is a figure measured for the reconciler (a) and its baseline (b)
// in alternating runs: a[i] and b[i] are pair i.
type paired struct {
	a, b sample
}

// ratio is median(b)/median(a): how many times the baseline's figure the
// reconciler's is smaller; with the spread of the per-pair ratios.
func (p paired) ratio() (med, lo, hi float64) {
	var r sample
	for i := range p.a {
		if i < len(p.b) && p.a[i] > 0 {
			r = append(r, p.b[i]/p.a[i])
		}
	}
	if len(r) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	return p.b.median() / p.a.median(), r.min(), r.max()
}

// alternate runs a and b in turn, n pairs, A first: A B A B ...
func alternate(n int, a, b func(i int) (float64, error)) (paired, error) {
	var p paired
	for i := 0; i < n; i++ {
		x, err := a(i)
		if err != nil {
			return p, fmt.Errorf("pair %d, reconciler: %w", i+1, err)
		}
		p.a = append(p.a, x)
		y, err := b(i)
		if err != nil {
			return p, fmt.Errorf("pair %d, baseline: %w", i+1, err)
		}
		p.b = append(p.b, y)
	}
	return p, nil
}

// Formatting: a median with its spread (min–max over the runs).

func fmtSeconds(s sample) string {
	if len(s) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s s (%s–%s)", sig(s.median()), sig(s.min()), sig(s.max()))
}

func fmtMillis(s sample) string {
	if len(s) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s ms (%s–%s)", sig(s.median()*1000), sig(s.min()*1000), sig(s.max()*1000))
}

func fmtRatio(p paired) string {
	m, lo, hi := p.ratio()
	if math.IsNaN(m) {
		return "—"
	}
	return fmt.Sprintf("%sx (%s–%s)", sig(m), sig(lo), sig(hi))
}

// sig prints a figure with about three significant digits, without
// trailing zeros.
func sig(v float64) string {
	var s string
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "—"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		s = fmt.Sprintf("%.1f", v)
	case a >= 1:
		s = fmt.Sprintf("%.2f", v)
	default:
		s = fmt.Sprintf("%.3f", v)
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func fmtBytes(n float64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

func containerListAll(label string) container.ListOptions {
	return container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))}
}

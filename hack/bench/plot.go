package main

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// writePlot draws scenario 2: wall time against the number of declared
// services, the reconciler and the runbook, each as the median with the
// min–max of its runs.
func (b *bench) writePlot(path string) error {
	var sizes []int
	for n := range b.s2 {
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	p := plot.New()
	p.Title.Text = "Scenario 2: 10% of N swarm services change (replicas 0 <-> 1)"
	p.X.Label.Text = "declared swarm services (N)"
	p.Y.Label.Text = "wall time, seconds (median, min-max)"
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	series := []struct {
		name  string
		pick  func(paired) sample
		color color.Color
		shape draw.GlyphDrawer
	}{
		{"reconciler apply (one commit)", func(p paired) sample { return p.a }, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, draw.CircleGlyph{}},
		{"runbook: docker service scale, one by one", func(p paired) sample { return p.b }, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, draw.SquareGlyph{}},
	}
	for _, s := range series {
		pts := make(plotter.XYs, len(sizes))
		errs := make(plotter.YErrors, len(sizes))
		for i, n := range sizes {
			v := s.pick(b.s2[n])
			m := v.median()
			pts[i] = plotter.XY{X: float64(n), Y: m}
			errs[i] = struct{ Low, High float64 }{m - v.min(), v.max() - m}
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color, points.Shape = s.color, s.color, s.shape
		points.Radius = vg.Points(3)
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYer
			plotter.YErrorer
		}{pts, errs})
		if err != nil {
			return err
		}
		bars.Color = s.color
		p.Add(line, points, bars)
		p.Legend.Add(s.name, line, points)
		for i, n := range sizes {
			lbl, err := plotter.NewLabels(plotter.XYLabels{
				XYs:    plotter.XYs{pts[i]},
				Labels: []string{fmt.Sprintf(" %s s (%d changed)", sig(pts[i].Y), (n+9)/10)},
			})
			if err != nil {
				return err
			}
			p.Add(lbl)
		}
	}
	// The design's target for 200 services, as a dashed line.
	target, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 5}, {X: float64(sizes[len(sizes)-1]) * 1.25, Y: 5}})
	if err != nil {
		return err
	}
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	target.Color = color.Gray{Y: 0x70}
	p.Add(target)
	p.Legend.Add("target: a 200-service pass in < 5 s", target)
	p.X.Min, p.Y.Min = 0, 0
	p.X.Max = float64(sizes[len(sizes)-1]) * 1.25
	top := 0.0
	for _, n := range sizes {
		top = max(top, b.s2[n].b.max(), b.s2[n].a.max())
	}
	p.Y.Max = top * 1.3 // room for the legend above the lines
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

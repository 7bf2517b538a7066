package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The plots `make bench` writes from its own numbers, one per scenario
// family: the maintenance flip (reconciler, floor, runbook, as bars) and N
// services (time against N, the three as lines). Every figure is the median
// of its runs, with the min–max; the legend sits beside the data, never on
// it.

var (
	colReconciler = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colFloor      = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	colRunbook    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

const (
	plotW, plotH = 9 * vg.Inch, 5 * vg.Inch
	legendW      = 2.3 * vg.Inch
)

// writePlots writes PREFIX-flip.png (scenario 1) and PREFIX-services.png
// (scenario 2), each when its scenario ran; it returns the files written.
func (b *bench) writePlots(prefix string) ([]string, error) {
	plots := []struct {
		ran    bool
		make   func() (*plot.Plot, plot.Legend, error)
		suffix string
	}{
		{len(b.flip) > 0, b.flipPlot, "-flip.png"},
		{len(b.s2) > 0, b.servicesPlot, "-services.png"},
	}
	var written []string
	for _, pl := range plots {
		if !pl.ran {
			continue
		}
		p, l, err := pl.make()
		if err != nil {
			return written, err
		}
		path := prefix + pl.suffix
		if err := savePlot(p, l, path); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// pointLabels writes lbls at pts, aligned at x and y, size points large,
// in col (nil: the default colour).
func pointLabels(pts plotter.XYs, lbls []string, x draw.XAlignment, y draw.YAlignment, size float64, col color.Color) (*plotter.Labels, error) {
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: lbls})
	if err != nil {
		return nil, err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].XAlign = x
		lb.TextStyle[i].YAlign = y
		lb.TextStyle[i].Font.Size = vg.Points(size)
		if col != nil {
			lb.TextStyle[i].Color = col
		}
	}
	return lb, nil
}

// savePlot draws the plot on the left and its legend in a column of its
// own on the right.
func savePlot(p *plot.Plot, l plot.Legend, path string) error {
	c := vgimg.New(plotW, plotH)
	dc := draw.New(c)
	// White behind everything (the legend column too).
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	l.Top, l.Left = true, true
	l.Draw(draw.Crop(dc, plotW-legendW+vg.Points(6), 0, 0, -vg.Points(40)))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font.Size = vg.Points(10)
	l.Padding = vg.Points(12) // entries of two lines must not touch
	return l
}

// flipPlot: enter and leave, three bars each, the median written above
// each bar with the spread under it.
func (b *bench) flipPlot() (*plot.Plot, plot.Legend, error) {
	l := newLegend()
	p := plot.New()
	p.Title.Text = "Scenario 1: maintenance flip of examples/factory-proxy\n(3 swarm services + timer; median of the runs, min-max)"
	p.Y.Label.Text = "wall time, seconds"
	p.Add(plotter.NewGrid())
	groups := []string{"enter", "leave"}
	p.NominalX("enter maintenance", "leave maintenance")
	width := vg.Points(48)
	series := []struct {
		name string
		pick func(flipTimes) sample
		col  color.Color
	}{
		{"reconciler apply", func(f flipTimes) sample { return f.reconciler }, colReconciler},
		{"floor: minimal client,\nsame stages", func(f flipTimes) sample { return f.floor }, colFloor},
		{"runbook (seed 000's\nscripts, in order)", func(f flipTimes) sample { return f.runbook }, colRunbook},
	}
	top := 0.0
	for si, s := range series {
		vals := make(plotter.Values, len(groups))
		var pts plotter.XYs
		var lbls []string
		for gi, g := range groups {
			v := s.pick(b.flip[g])
			if len(v) == 0 {
				continue
			}
			vals[gi] = v.median()
			top = max(top, v.max())
			pts = append(pts, plotter.XY{X: float64(gi), Y: v.median()})
			lbls = append(lbls, fmt.Sprintf("%s s\n%s–%s", sig(v.median()), sig(v.min()), sig(v.max())))
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, l, err
		}
		bars.Color, bars.LineStyle.Width = s.col, 0
		bars.Offset = vg.Length(si-1) * width
		p.Add(bars)
		l.Add(s.name, bars)
		if len(pts) == 0 {
			continue
		}
		lb, err := pointLabels(pts, lbls, draw.XCenter, draw.YBottom, 9, nil)
		if err != nil {
			return nil, l, err
		}
		lb.Offset = vg.Point{X: bars.Offset, Y: vg.Points(3)}
		p.Add(lb)
	}
	p.Y.Min, p.Y.Max = 0, top*1.25 // room for the labels above the bars
	return p, l, nil
}

// servicesPlot: time against N declared services (10% changed), for the
// reconciler, the floor and the runbook, on a log scale (the runbook is
// ten times slower; a linear axis would flatten the other two).
func (b *bench) servicesPlot() (*plot.Plot, plot.Legend, error) {
	l := newLegend()
	var sizes []int
	for n := range b.s2 {
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	p := plot.New()
	p.Title.Text = "Scenario 2: 10% of N swarm services change (replicas 0 <-> 1)\n(median of the runs, bars: min-max; log scale)"
	p.X.Label.Text = "declared swarm services (N); every 10th changes"
	p.Y.Label.Text = "wall time, seconds"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	series := []struct {
		name  string
		pick  func(n int) sample
		col   color.Color
		shape draw.GlyphDrawer
		// where the value labels go: the reconciler's above, the floor's
		// below (the two lie close), the runbook's above.
		yAlign draw.YAlignment
		dy     vg.Length
	}{
		{"reconciler apply\n(one commit)", func(n int) sample { return b.s2[n].a }, colReconciler, draw.CircleGlyph{}, draw.YBottom, vg.Points(6)},
		{"floor: every update at\nonce, await the manager", func(n int) sample { return b.s2floor[n].b }, colFloor, draw.TriangleGlyph{}, draw.YTop, -vg.Points(6)},
		{"runbook: docker service\nscale, one by one", func(n int) sample { return b.s2[n].b }, colRunbook, draw.SquareGlyph{}, draw.YBottom, vg.Points(6)},
	}
	lo, hi := 1e9, 0.0
	for _, s := range series {
		var pts plotter.XYs
		var errs plotter.YErrors
		var lbls []string
		for _, n := range sizes {
			v := s.pick(n)
			if len(v) == 0 {
				continue
			}
			m := v.median()
			pts = append(pts, plotter.XY{X: float64(n), Y: m})
			errs = append(errs, struct{ Low, High float64 }{m - v.min(), v.max() - m})
			lbls = append(lbls, fmt.Sprintf("%s s", sig(m)))
			lo, hi = min(lo, v.min()), max(hi, v.max())
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, l, err
		}
		line.Color, points.Color, points.Shape = s.col, s.col, s.shape
		points.Radius = vg.Points(3.5)
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYer
			plotter.YErrorer
		}{pts, errs})
		if err != nil {
			return nil, l, err
		}
		bars.Color = s.col
		lb, err := pointLabels(pts, lbls, draw.XLeft, s.yAlign, 10, s.col)
		if err != nil {
			return nil, l, err
		}
		lb.Offset = vg.Point{X: vg.Points(6), Y: s.dy}
		p.Add(line, points, bars, lb)
		l.Add(s.name, line, points)
	}
	target, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 5}, {X: float64(sizes[len(sizes)-1]) * 1.3, Y: 5}})
	if err != nil {
		return nil, l, err
	}
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	target.Color = color.Gray{Y: 0x70}
	p.Add(target)
	l.Add("target: 200 services\nin < 5 s", target)
	p.X.Min, p.X.Max = 0, float64(sizes[len(sizes)-1])*1.3
	p.Y.Min, p.Y.Max = min(lo, 5)/1.6, hi*1.6
	var ticks []plot.Tick
	for _, n := range sizes {
		ticks = append(ticks, plot.Tick{Value: float64(n), Label: fmt.Sprintf("%d\n(%d changed)", n, (n+9)/10)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	return p, l, nil
}

package main

import (
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

var plotDir = flag.String("plotdir", "", "write the test plots here to look at them (default: a temporary folder)")

// TestWritePlots draws both plots from figures of a past run and checks
// they are PNGs of the page's size.
func TestWritePlots(t *testing.T) {
	b := &bench{
		s2: map[int]paired{
			50:  {a: sample{2.22, 1.96, 2.38}, b: sample{30, 25.9, 30.2}},
			200: {a: sample{8.22, 3.87, 8.66}, b: sample{121, 104, 121}},
		},
		s2floor: map[int]paired{
			50:  {a: sample{2.22, 1.96, 2.38}, b: sample{2.0, 1.8, 2.1}},
			200: {a: sample{8.22, 3.87, 8.66}, b: sample{7.9, 3.7, 8.4}},
		},
		flip: map[string]flipTimes{
			"enter": {reconciler: sample{3.17, 3.15, 3.27}, floor: sample{2.9, 2.8, 3.0}, runbook: sample{16.1, 16.1, 16.3}},
			"leave": {reconciler: sample{2.26, 2.21, 2.44}, floor: sample{2.0, 1.9, 2.1}, runbook: sample{18.6, 18.3, 18.7}},
		},
	}
	dir := *plotDir
	if dir == "" {
		dir = t.TempDir()
	}
	written, err := b.writePlots(filepath.Join(dir, "bench"))
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 2 {
		t.Fatalf("wrote %v, want the flip and the services plots", written)
	}
	for _, w := range written {
		f, err := os.Open(w)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		if got := img.Bounds().Dx(); got < 600 {
			t.Errorf("%s: %d pixels wide", w, got)
		}
	}
}

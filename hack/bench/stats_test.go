package main

import (
	"math"
	"testing"
)

func TestSampleAndRatio(t *testing.T) {
	s := sample{3, 1, 2, 10}
	if m := s.median(); m != 2.5 {
		t.Errorf("median %v, want 2.5", m)
	}
	if s.min() != 1 || s.max() != 10 {
		t.Errorf("min/max %v/%v", s.min(), s.max())
	}
	if m := (sample{}).median(); !math.IsNaN(m) {
		t.Errorf("median of nothing: %v", m)
	}
	p := paired{a: sample{1, 2, 4}, b: sample{10, 10, 10}}
	m, lo, hi := p.ratio()
	if m != 5 || lo != 2.5 || hi != 10 {
		t.Errorf("ratio %v (%v-%v), want 5 (2.5-10)", m, lo, hi)
	}
	for v, want := range map[float64]string{1234.5: "1234", 12.34: "12.3", 1.0: "1", 1.50: "1.5", 0.01234: "0.012", 7.000001: "7"} {
		if got := sig(v); got != want {
			t.Errorf("sig(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestAlternateRunsABAB(t *testing.T) {
	var order []string
	p, err := alternate(3,
		func(i int) (float64, error) { order = append(order, "A"); return float64(i), nil },
		func(i int) (float64, error) { order = append(order, "B"); return float64(10 * i), nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := len(order); got != 6 {
		t.Fatalf("%d runs", got)
	}
	for i, x := range order {
		if want := "AB"[i%2 : i%2+1]; x != want {
			t.Fatalf("run order %v, want A B A B ...", order)
		}
	}
	if len(p.a) != 3 || len(p.b) != 3 || p.b[2] != 20 {
		t.Errorf("pairs %+v", p)
	}
}

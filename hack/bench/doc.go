package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// The results section of docs/BENCHMARKS.md lies between these markers; a
// run with -doc replaces it and leaves the rest of the page as it is.
const (
	docBegin = "<!-- bench-results:begin (written by hack/bench; do not edit by hand) -->"
	docEnd   = "<!-- bench-results:end -->"
)

func (b *bench) writeDoc(path, table string, took time.Duration) error {
	page, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(page, []byte(docBegin)), bytes.Index(page, []byte(docEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q section", path, docBegin, docEnd)
	}
	var sb strings.Builder
	sb.WriteString(docBegin + "\n\n")
	fmt.Fprintf(&sb, "Run of %s, %s, `%s`, %d pairs per timed figure.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		took.Round(time.Second), strings.Join(os.Args[1:], " "), b.cfg.pairs)
	sb.WriteString("Machine: " + machine() + "\n\n")
	sb.WriteString(table + "\n")
	for _, n := range b.notes {
		sb.WriteString("- " + n + "\n")
	}
	sb.WriteString("\n" + docEnd)
	out := append(append(append([]byte{}, page[:i]...), sb.String()...), page[j+len(docEnd):]...)
	return os.WriteFile(path, out, 0o644)
}

// machine describes where the run happened.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.TrimPrefix(strings.Split(string(b), "\n")[0], "MemTotal:"), "%f", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", kb/(1<<20))
	}
	cmd := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%d × %s%s; Linux %s; Docker Engine %s; %s; %s",
		runtime.NumCPU(), cpu, mem, cmd("uname", "-r"),
		cmd("docker", "version", "--format", "{{.Server.Version}}"), cmd("git", "--version"), runtime.Version())
}

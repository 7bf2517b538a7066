package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/desired/source"
)

// limitFlags are the bounds on what one revision (and one git server's
// answers) may cost, each checked before the bytes it guards are read. The
// flag names are the bound names that refusals print.
type limitFlags struct {
	src   source.Limits
	parse v1.Limits
}

func (l *limitFlags) register(fs *pflag.FlagSet) {
	sd, pd := source.DefaultLimits(), v1.DefaultLimits()
	l.src, l.parse = sd, pd
	fs.Var((*byteSize)(&l.src.MaxFileBytes), source.BoundFileBytes, "largest file (and git object) of a revision read, checked before reading it (e.g. 8MiB)")
	fs.Var((*byteSize)(&l.src.MaxRevisionBytes), source.BoundRevisionBytes, "most bytes of all the files of a revision under --path together")
	fs.IntVar(&l.src.MaxRefLines, source.BoundRefLines, sd.MaxRefLines, "most lines of a git server's ref listing (ls-refs)")
	fs.Var((*byteSize)(&l.src.MaxRefBytes), source.BoundRefBytes, "most bytes of a git server's ref listing")
	fs.IntVar(&l.src.MaxShallowLines, source.BoundShallowLines, sd.MaxShallowLines, "most shallow/unshallow lines of a git fetch answer")
	fs.Var((*byteSize)(&l.src.MaxPackBytes), source.BoundPackBytes, "most bytes of one git pack (or fetch answer) received")
	fs.IntVar(&l.parse.MaxNodes, v1.BoundNodes, pd.MaxNodes, "most YAML values of a revision (unknown keys included, aliases counted each time followed)")
	fs.IntVar(&l.parse.MaxDocuments, v1.BoundDocuments, pd.MaxDocuments, "most YAML documents of a revision")
	fs.IntVar(&l.parse.MaxServices, v1.BoundServices, pd.MaxServices, "most services and units declared in a revision")
	fs.IntVar(&l.parse.MaxErrors, v1.BoundErrors, pd.MaxErrors, "errors listed in full; the rest are counted in one \"and N more\"")
	fs.DurationVar(&l.parse.MaxTime, v1.BoundTime, pd.MaxTime, "longest parse and validation of a revision")
}

// byteSize is a flag value in bytes, written as a plain number or with a
// unit: 8MiB, 512KiB, 1GiB (or k, M, G, the same binary units).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "bytes" }

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"k", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q: want a positive size such as 8MiB or 1048576", s)
	}
	return n * mult, nil
}

package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The .deb's /etc/default/reconciler lists every setting of `reconciler
// run`, commented, so an operator finds each one where the unit reads it. A
// flag added to run without a line there fails here.
func TestDebDefaultFileNamesEveryRunFlag(t *testing.T) {
	b, err := os.ReadFile("../../packaging/deb/default")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if m := regexp.MustCompile(`(?m)^RECONCILER_`).FindString(text); m != "" {
		t.Errorf("packaging/deb/default sets a value; every setting must stay commented until the operator sets it")
	}
	newRunCommand().Flags().VisitAll(func(f *pflag.Flag) {
		key := "RECONCILER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if !strings.Contains(text, "\n#"+key+"=") {
			t.Errorf("packaging/deb/default has no commented line #%s= for --%s", key, f.Name)
		}
	})
}

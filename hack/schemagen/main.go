// Command schemagen writes api/v1/schema.json: the JSON Schema of the
// desired-state documents, built by v1.BuildSchema from the Go types, with
// the doc comments of their fields (read from the source of api/v1, which is
// the only place they exist) as descriptions.
//
// It runs from `go generate ./api/v1` (the working folder is then api/v1, the
// defaults below). From the repository root:
//
//	go run ./hack/schemagen -pkg api/v1 -o api/v1/schema.json
//
// api/v1 embeds schema.json, so the file must exist for this program to
// build; it is committed. To start over from a lost one, write "{}" into it
// first.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/internal/godoc"
)

func main() {
	pkg := flag.String("pkg", ".", "folder of the api/v1 package source")
	out := flag.String("o", "schema.json", "file to write")
	flag.Parse()
	if err := run(*pkg, *out); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run(pkg, out string) error {
	docs, err := godoc.Dir(pkg)
	if err != nil {
		return err
	}
	schema, err := v1.BuildSchema(docs)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, schema) {
		return nil // unchanged: keep the file's time, so make sees nothing new
	}
	return os.WriteFile(out, schema, 0o644)
}

// Package godoc reads the doc comments of a Go package's types and struct
// fields from source, for generators that turn them into documentation (the
// JSON Schema of api/v1 takes every property's description from here).
package godoc

import (
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// Docs maps "Type" to a type's doc comment and "Type.Field" to a struct
// field's, each as one line of text: the comment's lines joined by single
// spaces. A field without a doc comment above it takes its trailing line
// comment; embedded fields are keyed by their type name ("DefaultsSpec.
// HostSpec"). Types and fields without any comment are left out.
type Docs map[string]string

// Dir reads the package in a folder: every .go file except tests.
func Dir(dir string) (Docs, error) {
	return FS(os.DirFS(dir), ".")
}

// FS reads the package in folder dir of fsys.
func FS(fsys fs.FS, dir string) (Docs, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var files []*ast.File
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := path.Join(dir, n)
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("godoc: no Go files in %s", dir)
	}
	return fromFiles(fset, files)
}

func fromFiles(fset *token.FileSet, files []*ast.File) (Docs, error) {
	// go/doc attaches a type's comment whether it is written above
	// "type X ..." or above the spec inside a "type ( ... )" group.
	pkg, err := doc.NewFromFiles(fset, files, "pkg", doc.AllDecls|doc.PreserveAST)
	if err != nil {
		return nil, fmt.Errorf("godoc: %w", err)
	}
	out := Docs{}
	for _, t := range pkg.Types {
		for _, spec := range t.Decl.Specs {
			ts, ok := spec.(*ast.TypeSpec)
			if !ok || ts.Name.Name != t.Name {
				continue
			}
			text := t.Doc
			if len(t.Decl.Specs) > 1 && ts.Doc != nil {
				text = ts.Doc.Text()
			}
			if s := Clean(text); s != "" {
				out[t.Name] = s
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, f := range st.Fields.List {
				text := f.Doc.Text()
				if text == "" {
					text = f.Comment.Text()
				}
				s := Clean(text)
				if s == "" {
					continue
				}
				for _, name := range fieldNames(f) {
					out[t.Name+"."+name] = s
				}
			}
		}
	}
	return out, nil
}

// fieldNames returns the names a field declares; an embedded field is named
// by its type (T, *T and pkg.T are all T).
func fieldNames(f *ast.Field) []string {
	if len(f.Names) > 0 {
		out := make([]string, len(f.Names))
		for i, n := range f.Names {
			out[i] = n.Name
		}
		return out
	}
	t := f.Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch t := t.(type) {
	case *ast.Ident:
		return []string{t.Name}
	case *ast.SelectorExpr:
		return []string{t.Sel.Name}
	}
	return nil
}

// Clean turns comment text into one line: lines joined by single spaces.
func Clean(text string) string {
	return strings.Join(strings.Fields(text), " ")
}

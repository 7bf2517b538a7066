package godoc

import (
	"reflect"
	"testing"
	"testing/fstest"
)

func TestFS(t *testing.T) {
	fsys := fstest.MapFS{
		"p/a.go": {Data: []byte(`package p

// Outer is documented
// on two lines.
type Outer struct {
	// Name is the name.
	Name string ` + "`json:\"name\"`" + `
	Inner ` + "`json:\",inline\"`" + `
	A, B int // A and B share a line comment.
	undocumented bool
}

type (
	// Inner sits in a group.
	Inner struct {
		// Deep is *pointer* typed.
		Deep *int
	}
	// Mode is not a struct.
	Mode string
)
`)},
		"p/a_test.go": {Data: []byte("package p\n\n// Ignored is in a test file.\ntype Ignored struct{}\n")},
		"p/notgo.txt": {Data: []byte("// Not Go.\n")},
	}
	got, err := FS(fsys, "p")
	if err != nil {
		t.Fatal(err)
	}
	want := Docs{
		"Outer":      "Outer is documented on two lines.",
		"Outer.Name": "Name is the name.",
		"Outer.A":    "A and B share a line comment.",
		"Outer.B":    "A and B share a line comment.",
		"Inner":      "Inner sits in a group.",
		"Inner.Deep": "Deep is *pointer* typed.",
		"Mode":       "Mode is not a struct.",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestFSNoFiles(t *testing.T) {
	if _, err := FS(fstest.MapFS{"p/x.txt": {}}, "p"); err == nil {
		t.Error("no error for a folder without Go files")
	}
}

// TestDirReadsAPIv1 reads the real package the schema is built from.
func TestDirReadsAPIv1(t *testing.T) {
	docs, err := Dir("../../api/v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Host", "Service.Replicas", "TypeMeta.Kind", "HostSpec.Maintenance", "AMQPQueue.URLFile"} {
		if docs[k] == "" {
			t.Errorf("no doc for %s", k)
		}
	}
}

// Package filetree reads and writes a folder of small text files as a map
// from slash path to content: the form in which the tests (test/e2e,
// desired/source) and the benchmark (hack/bench) hold a desired-state tree
// they commit to a test repository, or take from examples/.
package filetree

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Read returns every file below root, by path relative to root.
func Read(root string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return files, err
}

// Write writes files below root, creating folders as needed, in path
// order; an empty content removes the file instead (a commit's "delete
// this"), and a file that is not there to remove is no error.
func Write(root string, files map[string]string) error {
	for _, p := range slices.Sorted(maps.Keys(files)) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if files[p] == "" {
			if err := os.Remove(full); err != nil && !os.IsNotExist(err) {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			return err
		}
	}
	return nil
}

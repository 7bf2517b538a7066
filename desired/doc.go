// Package desired turns a git repository (or a local folder) into one host's
// effective desired state: it fetches the source, loads every document,
// selects and merges what applies to the host, and records where each value
// came from. Nothing else in the program touches git.
package desired

// Package v1 holds the desired-state documents of apiVersion reconciler.dev/v1:
// the Host and Defaults kinds, their defaults, validation and JSON Schema. It
// does no I/O: callers hand it bytes and a file name and get back typed
// documents or positioned errors (file:line:col: message).
package v1

// Package syncbuf is a bytes.Buffer that a child process writes to (its
// stderr) while the program that started it reads it: the bench's agents
// and the e2e tests' agents both keep one.
package syncbuf

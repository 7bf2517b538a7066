// Package callcount counts the calls a program makes to Docker and to systemd,
// on the wire, so that tests and benchmarks can prove claims such as "a pass
// where nothing differs makes zero mutating calls" (DESIGN.md, Semantics) and
// "at most 1 read call per driver" (DESIGN.md, Performance).
//
// # Why on the wire
//
// A counter inside the code under test only counts what that code believes it
// does: a helper that retries, a client library that pings before every
// request, a second connection opened behind our back, or a call site someone
// forgot to instrument all escape it. A proxy between the program and the
// daemon sees every request the daemon sees and nothing else, whatever library
// made it. The code under test is pointed at the proxy exactly as it would be
// pointed at a real daemon, through DOCKER_HOST or DBUS_SYSTEM_BUS_ADDRESS, and
// needs no hooks, fakes or build tags.
//
// # The proxies
//
// [DockerProxy] listens on a unix socket and forwards every HTTP request to the
// Docker socket unchanged (net/http/httputil.ReverseProxy over a unix-socket
// transport; streaming responses such as /events are flushed as they arrive).
// It counts requests by method and normalised route, "POST /services/{id}/update":
// the API version prefix is stripped and object ids and names are replaced with
// {id}. Every method other than GET and HEAD is mutating.
//
// [DBusProxy] listens on a unix socket and copies bytes both ways to a D-Bus
// socket, byte for byte, passing unix file descriptors along (SCM_RIGHTS) so
// that clients which negotiate NEGOTIATE_UNIX_FD keep working; the server's
// AGREE_UNIX_FD is not rewritten. It parses the client-to-server stream (the
// SASL lines up to BEGIN, then the framed binary messages) and counts
// METHOD_CALL messages by member name, "StartUnit". Which members count as
// mutating, which as the bus's own housekeeping and which as reads is written
// down at [DBusProxy].
//
// Both proxies count a call when it arrives, before forwarding it, so by the
// time a client sees the reply the call is in the counts. Both serve many
// connections at once. Close stops accepting, closes the live connections
// (ending streams in progress) and returns once every connection and handler
// of the proxy has finished.
//
// Typical use in a test:
//
//	p, err := callcount.NewDockerProxy(filepath.Join(dir, "docker.sock"), "")
//	...
//	t.Setenv("DOCKER_HOST", p.Host())
//	runOnePass()
//	if p.Mutating() != 0 {
//		t.Errorf("a pass with nothing to do made writes: %v", p.Counts())
//	}
//
// Unix socket paths are limited to about 100 bytes; put the proxy's socket in
// a short directory (t.TempDir() of a test with a long name may be too long).
package callcount

// Package supervisor is the driver for supervisord program groups, over
// supervisord's XML-RPC API on its unix socket (service fields program,
// default the service name, and socket, default /var/run/supervisor.sock).
//
// A program is declared in supervisord's own config with numprocs as the
// most that may ever run (seed 001: "[program:usm-poller] numprocs=15");
// the reconciler owns how many of those processes run, never the config.
// replicas: N means exactly the first N processes of the group are RUNNING
// and the others are not, the first being the lowest process number (the
// last run of digits in the process name, "usm-poller_07" is 7; names are
// the tie-break). Extras are stopped one at a time from the highest, each
// stop waiting until the process has exited; missing ones are started in
// order, lowest first. A count above the group's numprocs is reported as
// unsupported, naming both numbers, and nothing is changed; a program
// supervisord does not know is reported missing. Processes that are
// STOPPING beyond N are left to finish.
//
// Live state: Replicas counts the processes supervisord counts as started
// (RUNNING, STARTING, BACKOFF), Running those RUNNING; Details carry
// numprocs, a summary of the states, each process not STOPPED with its
// state, and the pids. Health is ready when exactly the first N are RUNNING
// and the rest STOPPED, EXITED or FATAL, and drained when nothing beyond the
// first N is running, starting, backing off or stopping.
//
// Graceful scale-down: stopProcess(name, wait=true) returns once the
// process has exited; supervisord sends the program's stopsignal and kills
// it after the program's stopwaitsecs. The driver waits at most the
// service's stopTimeout plus StopSlack for each: declare stopTimeout at
// least as long as stopwaitsecs, which the reconciler does not own.
//
// restartOn: a changed value restarts the RUNNING processes among the first
// N one at a time (restarton.go), the value last applied kept in the
// driver's record under --state-dir (package restarton).
//
// observe.go reads every service with one getAllProcessInfo call per socket
// per pass, whatever the number of services; plan.go is pure; apply.go
// starts and stops processes; health.go judges readiness. Errors name the
// service's subject ("supervisor/usm-poller") and the process. The faults
// ALREADY_STARTED (on start) and NOT_RUNNING (on stop) mean someone made it
// so already: they are not errors (a process found STOPPING is waited for).
// supervisord's optional HTTP basic auth on the socket (username and
// password in [unix_http_server]) is not supported: the socket's file
// permissions are what guards it.
//
// # The XML-RPC client is our own
//
// xmlrpc.go is a small XML-RPC client written for this driver, on
// encoding/xml and net/http. We looked at github.com/kolo/xmlrpc, the
// library Go projects usually take (and the one the e2e smoke test uses as
// an independent second opinion): it is built on net/rpc, so a call takes
// no context and cannot be cancelled or given its own deadline, it reads
// answers of any size, and it has been unmaintained since 2022. Both
// matter here: stopProcess with wait legitimately blocks for as long as a
// process takes to exit, so each call needs its own bound, and shutting the
// agent down must be able to stop waiting. The other clients we looked at
// (alexejk.io/go-xmlrpc, gitlab.com/bboehmke/go-xmlrpc) document a Call
// without a context too. What supervisord needs is
// small: calls with string, bool and int parameters, and answers made of
// structs, arrays, strings, ints, booleans and faults. The client does only
// that (a few hundred lines): every call runs under a context (a default
// timeout when it has none), an answer is bounded (DefaultMaxResponse) and
// nesting is limited, and the decoder is tested on answers captured from a
// real supervisord 4.2 (testdata/) and fuzzed (FuzzDecodeResponse).
package supervisor

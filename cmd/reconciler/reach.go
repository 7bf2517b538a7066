package main

import (
	"github.com/spf13/pflag"

	v1 "reconciler.dev/reconciler/api/v1"
)

// reachFlags are the agent's own limits on what a revision may reach (see
// v1.Reach): run, plan and apply take the same ones, so a plan shows the
// refusal the agent would make.
type reachFlags struct {
	allowExec   bool
	dtRoots     []string
	svSockets   []string
	secretsDirs []string
}

const reachHelp = `Limits (the agent's, not git's): whoever can push to the followed ref
writes the documents, so the host decides what they may reach. A revision
that needs more than these flags allow is refused whole (the last good
revision stays in force), each refused field naming the flag that allows it:
  --allow-exec-probes     ready.exec runs its argv as the agent's user (off)
  --daemontools-root      folders a daemontools/runit dir may lie below
                          (default /service, /etc/service, /var/service)
  --allowed-supervisor-sockets
                          supervisord sockets a service may use: exact paths,
                          or folders ending in / (default
                          /var/run/supervisor.sock, /run/supervisor.sock)
  --secrets-dir           folders an autoscale urlFile may lie below
                          (default /etc/reconciler)
The list flags take several values, comma-separated or repeated.`

func (l *reachFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&l.allowExec, v1.FlagAllowExecProbes[2:], false, "let ready.exec probes run commands from the documents on this host, as the agent's user (off: a revision with one is refused)")
	fs.StringSliceVar(&l.dtRoots, v1.FlagDaemontoolsRoot[2:], v1.DefaultDaemontoolsRoots, "folders a daemontools or runit service dir may lie below (a list)")
	fs.StringSliceVar(&l.svSockets, v1.FlagSupervisorSockets[2:], v1.DefaultSupervisorSockets, "supervisord sockets a service may use: exact paths, or folders ending in / (a list)")
	fs.StringSliceVar(&l.secretsDirs, v1.FlagSecretsDir[2:], v1.DefaultSecretsDirs, "folders an autoscale amqp urlFile may lie below (a list)")
}

func (l *reachFlags) reach() v1.Reach {
	return v1.Reach{AllowExecProbes: l.allowExec, DaemontoolsRoots: l.dtRoots, SupervisorSockets: l.svSockets, SecretsDirs: l.secretsDirs}
}

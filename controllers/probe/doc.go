// Package probe runs the readiness probes a service may declare (tcp, http,
// exec) and retries them until they pass or their timeout ends, the way the
// seed runbook's start scripts loop on a check before declaring a start good.
package probe

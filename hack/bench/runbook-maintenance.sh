#!/usr/bin/env bash
# Seed 000's maintenance runbook, as an operator runs it today (stop.sh and
# start.sh of ../shared/seeds/000), with the order the reconciler keeps:
#
#   runbook-maintenance.sh stop    stop and disable the housekeeping timer,
#                                  then scale factory-proxy, reference-BL and
#                                  factory-broker to 0, one by one
#   runbook-maintenance.sh start   scale factory-broker, reference-BL and
#                                  factory-proxy to 1, one by one, then enable
#                                  and start the timer
#
# `docker service scale` waits until each service has converged (and stays
# so for 5 s) before the next command runs: that wait is what the runbook
# costs, and what keeps its order. systemctl runs in the testbed's systemd
# container, where the timer lives. The bench (hack/bench) times this script
# against `reconciler apply`.
set -euo pipefail
CTR=${TESTBED_SYSTEMD_CONTAINER:-reconciler-systemd}
TIMER=abb-factory-proxy-housekeeping.timer

systemctl() { docker exec "$CTR" systemctl "$@"; }

case "${1:-}" in
stop)
	systemctl stop "$TIMER"
	systemctl disable "$TIMER"
	for service in factory-proxy reference-BL factory-broker; do
		docker service scale "$service=0"
	done
	;;
start)
	for service in factory-broker reference-BL factory-proxy; do
		docker service scale "$service=1"
	done
	systemctl enable "$TIMER"
	systemctl start "$TIMER"
	;;
*)
	echo "usage: $0 stop|start" >&2
	exit 2
	;;
esac

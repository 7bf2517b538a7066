#!/usr/bin/env bash
# The runbook way to change replica counts: `docker service scale NAME=N`
# for each service, one by one, in the order given, each waiting until the
# service has converged (and stays so for 5 s) before the next.
#
#   runbook-scale.sh NAME=N [NAME=N ...]
#
# The bench (hack/bench, scenario 2) times this against `reconciler apply`
# of a commit that changes the same services.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 NAME=N [NAME=N ...]" >&2; exit 2; }
for change in "$@"; do
	docker service scale "$change"
done

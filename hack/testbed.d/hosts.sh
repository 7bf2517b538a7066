# hack/testbed.d/hosts.sh: test hosts for multi-node tests, sourced by
# hack/testbed (it uses its log, die, alive, start_daemon, stop_daemon,
# wait_for, $STATE, $RUN).
#
#   hack/testbed hosts up N   N hosts joined into one swarm (idempotent)
#   hack/testbed hosts env    the export lines tests need (TESTBED_HOSTS_*)
#   hack/testbed hosts down   remove everything `hosts up` made
#
# The network (only loopback, or addresses inside network namespaces the
# tests make, may receive traffic; nothing here listens on an address of the
# root namespace other than loopback):
#
#   root ns  rtb-up0 10.213.1.1/30 --veth-- rtb-up1 10.213.1.2/30  hub ns (rtb-hub)
#            route 10.213.0.0/24 via 10.213.1.2                    bridge rtb-br 10.213.0.1/24
#                                                                  git http on 10.213.0.1:8418
#   host ns rtb-hN: eth0 10.213.0.(10+N)/24 --veth-- rtb-hN-br on rtb-br,
#                   route 10.213.1.0/30 via 10.213.0.1
#
# The hub forwards between the bridge and the root namespace's veth, so tests
# in the root namespace reach the agents and dockerds on the hosts'
# addresses; nothing listens on 10.213.1.1. The hosts reach the testbed's git
# repos through a second git http server (the same binary, the same
# $STATE/git) inside the hub namespace.
#
# Each host has its own dockerd: data root $STATE/hosts/hN/docker, exec root,
# pidfile and socket under $RUN/hosts/hN, started with `nsenter --net`
# (`ip netns exec` remounts /sys and dockerd then fails "Devices cgroup isn't
# mounted") inside a UTS namespace of its own whose hostname is rtb-hN, so
# every swarm node has its own name. Kept lean: --iptables=false,
# --bridge=none, --userland-proxy=false (tasks of the test services run with
# --network host, inside their host's namespace). Hosts 1-3 are managers
# (rtb-h1 initialises the swarm), the rest workers; the test images
# (local/worker:1, local/worker:2, local/failing:1) are copied from the main
# dockerd with docker save | docker load.

HOSTS_NET=10.213.0
HOSTS_HUB=rtb-hub
HOSTS_BR=rtb-br
HOSTS_GIT=$HOSTS_NET.1:8418
HOSTS_STATE=$STATE/hosts
HOSTS_RUN=$RUN/hosts
HOSTS_IMAGES=(local/worker:1 local/worker:2 local/failing:1)
HOSTS_MANAGERS=3

host_ns() { echo "rtb-h$1"; }
host_addr() { echo "$HOSTS_NET.$((10 + $1))"; }
host_sock() { echo "$HOSTS_RUN/h$1/docker.sock"; }
host_docker() { local i=$1; shift; DOCKER_HOST="unix://$(host_sock "$i")" docker "$@"; }
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

hosts_count() { cat "$HOSTS_STATE/count" 2>/dev/null || echo 0; }

hosts_net_up() {
	local n=$1
	[ -e /run/netns/$HOSTS_HUB ] || { log "making the hub namespace $HOSTS_HUB"; ip netns add $HOSTS_HUB; }
	in_ns $HOSTS_HUB ip link set lo up
	in_ns $HOSTS_HUB sysctl -qw net.ipv4.ip_forward=1
	if ! in_ns $HOSTS_HUB ip link show $HOSTS_BR >/dev/null 2>&1; then
		in_ns $HOSTS_HUB ip link add $HOSTS_BR type bridge
		in_ns $HOSTS_HUB ip addr add $HOSTS_NET.1/24 dev $HOSTS_BR
	fi
	in_ns $HOSTS_HUB ip link set $HOSTS_BR up
	if ! ip link show rtb-up0 >/dev/null 2>&1; then
		ip link add rtb-up0 type veth peer name rtb-up1
		ip link set rtb-up1 netns $HOSTS_HUB
		ip addr add 10.213.1.1/30 dev rtb-up0
		in_ns $HOSTS_HUB ip addr add 10.213.1.2/30 dev rtb-up1
	fi
	ip link set rtb-up0 up
	in_ns $HOSTS_HUB ip link set rtb-up1 up
	ip route replace $HOSTS_NET.0/24 via 10.213.1.2 dev rtb-up0
	local i
	for i in $(seq 1 "$n"); do
		local ns; ns=$(host_ns "$i")
		[ -e "/run/netns/$ns" ] || ip netns add "$ns"
		in_ns "$ns" ip link set lo up
		if ! in_ns "$ns" ip link show eth0 >/dev/null 2>&1; then
			in_ns $HOSTS_HUB ip link del "$ns-br" 2>/dev/null || true
			ip link add "$ns-br" type veth peer name "$ns-e0"
			ip link set "$ns-br" netns $HOSTS_HUB
			ip link set "$ns-e0" netns "$ns"
			in_ns "$ns" ip link set "$ns-e0" name eth0
			in_ns "$ns" ip addr add "$(host_addr "$i")/24" dev eth0
			in_ns $HOSTS_HUB ip link set "$ns-br" master $HOSTS_BR
		fi
		in_ns $HOSTS_HUB ip link set "$ns-br" up
		in_ns "$ns" ip link set eth0 up
		in_ns "$ns" ip route replace 10.213.1.0/30 via $HOSTS_NET.1 dev eth0
	done
}

# hosts_git_up builds the git server for the hub (its own copy, so the main
# one, which other tests count requests on, is never restarted by this) and
# serves $STATE/git on the bridge.
hosts_git_up() {
	command -v go >/dev/null || die "go is not on PATH: the testbed builds its test programs with it"
	local bin=$HOSTS_STATE/bin/gitserver
	if [ ! -x "$bin" ] || [ -n "$(find "$ROOT/hack/gitserver" "$ROOT/internal/gitserver" -newer "$bin" -name '*.go' | head -1)" ]; then
		(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$bin" ./hack/gitserver) || die "building the git server failed"
	fi
	local sum; sum=$(sha256sum "$HOSTS_STATE/bin/gitserver" | cut -c1-16)
	if alive "$HOSTS_RUN/gitserver.pid" && [ "$(cat "$HOSTS_RUN/gitserver.sum" 2>/dev/null)" != "$sum" ]; then
		stop_daemon "hub git server" "$HOSTS_RUN/gitserver.pid"
	fi
	if ! alive "$HOSTS_RUN/gitserver.pid"; then
		start_daemon "git server on $HOSTS_GIT (hub namespace)" "$HOSTS_RUN/gitserver.pid" "$STATE/log/hosts-gitserver.log" \
			nsenter --net=/run/netns/$HOSTS_HUB "$HOSTS_STATE/bin/gitserver" -listen $HOSTS_GIT -test-net $HOSTS_NET.0/24 -root "$STATE/git"
		echo "$sum" >"$HOSTS_RUN/gitserver.sum"
	fi
	wait_for "git server on $HOSTS_GIT" 30 in_ns $HOSTS_HUB bash -c "</dev/tcp/${HOSTS_GIT%:*}/${HOSTS_GIT#*:}"
}

host_dockerd_up() {
	local i=$1 ns; ns=$(host_ns "$i")
	local run=$HOSTS_RUN/h$i data=$HOSTS_STATE/h$i
	mkdir -p "$run/exec" "$data/docker"
	host_docker "$i" info >/dev/null 2>&1 && return 0
	alive "$run/docker.pid" || rm -f "$run/docker.pid"
	alive "$run/exec/containerd/containerd.pid" || rm -f "$run/exec/containerd/containerd.pid"
	start_daemon "dockerd of $ns" "$run/dockerd.pid" "$STATE/log/hosts-h$i-dockerd.log" \
		unshare --uts sh -c "hostname $ns && exec nsenter --net=/run/netns/$ns dockerd \
			--data-root '$data/docker' --exec-root '$run/exec' --pidfile '$run/docker.pid' \
			-H 'unix://$run/docker.sock' --iptables=false --ip-forward=false --ip-masq=false \
			--bridge=none --userland-proxy=false --log-level=warn"
}

host_images() {
	local i=$1 want have
	# One inspect of all the images per dockerd: on a loaded machine each
	# docker call costs most of a second, and `hosts up` runs in every test.
	want=$(docker image inspect -f '{{.Id}}' "${HOSTS_IMAGES[@]}")
	have=$(host_docker "$i" image inspect -f '{{.Id}}' "${HOSTS_IMAGES[@]}" 2>/dev/null) || have=none
	[ "$want" = "$have" ] && return 0
	log "loading the test images into rtb-h$i"
	docker save "${HOSTS_IMAGES[@]}" | host_docker "$i" load -q >/dev/null
}

hosts_swarm_up() {
	local n=$1 i
	if [ "$(host_docker 1 info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
		log "initialising the swarm on rtb-h1 ($(host_addr 1))"
		host_docker 1 swarm init --advertise-addr "$(host_addr 1)" --listen-addr "$(host_addr 1):2377" >/dev/null
	fi
	local mtoken wtoken
	mtoken=$(host_docker 1 swarm join-token -q manager)
	wtoken=$(host_docker 1 swarm join-token -q worker)
	for i in $(seq 2 "$n"); do
		[ "$(host_docker "$i" info --format '{{.Swarm.LocalNodeState}}')" = active ] && continue
		local token=$wtoken role=worker
		[ "$i" -le $HOSTS_MANAGERS ] && token=$mtoken role=manager
		log "joining rtb-h$i as a $role"
		host_docker "$i" swarm join --token "$token" --advertise-addr "$(host_addr "$i")" \
			--listen-addr "$(host_addr "$i"):2377" "$(host_addr 1):2377" >/dev/null
	done
	wait_for "$n nodes ready in the swarm" 60 bash -c \
		"[ \"\$(DOCKER_HOST=unix://$(host_sock 1) docker node ls --format '{{.Status}}' | grep -c Ready)\" -ge $n ]"
}

hosts_up() {
	need_root
	local n=${1:-}
	[[ "$n" =~ ^[1-9][0-9]?$ ]] || die "usage: hack/testbed hosts up N (1-99)"
	local have; have=$(hosts_count)
	if [ "$have" != 0 ] && [ "$have" != "$n" ]; then
		die "$have test hosts are up; run hack/testbed hosts down first to make $n"
	fi
	local t0=$SECONDS i
	mkdir -p "$HOSTS_STATE" "$HOSTS_RUN" "$STATE/log"
	docker info >/dev/null 2>&1 || die "the main dockerd is not up (hack/testbed up first)"
	echo "$n" >"$HOSTS_STATE/count"
	hosts_net_up "$n"
	hosts_git_up
	for i in $(seq 1 "$n"); do host_dockerd_up "$i"; done
	for i in $(seq 1 "$n"); do
		wait_for "dockerd of rtb-h$i (log: $STATE/log/hosts-h$i-dockerd.log)" 60 host_docker "$i" info
		host_images "$i"
	done
	hosts_swarm_up "$n"
	log "hosts up ($n) in $((SECONDS - t0))s"
}

hosts_env() {
	local n i list="" addrs="" socks=""
	n=$(hosts_count)
	[ "$n" != 0 ] || die "no test hosts (hack/testbed hosts up N)"
	for i in $(seq 1 "$n"); do
		list+="${list:+ }$(host_ns "$i")"
		addrs+="${addrs:+ }$(host_addr "$i")"
		socks+="${socks:+ }unix://$(host_sock "$i")"
	done
	cat <<EOF
export TESTBED_HOSTS="$list"
export TESTBED_HOSTS_ADDRS="$addrs"
export TESTBED_HOSTS_DOCKER="$socks"
export TESTBED_HOSTS_NETNS_DIR=/run/netns
export TESTBED_HOSTS_RUN=$HOSTS_RUN
export TESTBED_HOSTS_MANAGERS=$HOSTS_MANAGERS
export TESTBED_HOSTS_GIT_HTTP_URL=http://$HOSTS_GIT
EOF
}

hosts_down() {
	need_root
	local n i
	n=$(hosts_count)
	for i in $(seq 1 "$n"); do
		if host_docker "$i" info >/dev/null 2>&1; then
			host_docker "$i" swarm leave --force >/dev/null 2>&1 || true
			local ids; ids=$(host_docker "$i" ps -aq)
			[ -n "$ids" ] && host_docker "$i" rm -f $ids >/dev/null 2>&1 || true
		fi
		stop_daemon "dockerd of rtb-h$i" "$HOSTS_RUN/h$i/dockerd.pid"
		alive "$HOSTS_RUN/h$i/exec/containerd/containerd.pid" && kill "$(cat "$HOSTS_RUN/h$i/exec/containerd/containerd.pid")" 2>/dev/null || true
	done
	stop_daemon "hub git server" "$HOSTS_RUN/gitserver.pid"
	for ns in $(ip netns list | awk '{print $1}' | grep -E '^rtb-h[0-9]+$|^rtb-hub$' || true); do
		ip netns del "$ns"
	done
	ip link del rtb-up0 2>/dev/null || true
	ip route del $HOSTS_NET.0/24 2>/dev/null || true
	# The hosts' data roots hold overlay mounts of their containers.
	for i in $(seq 1 "$n"); do
		grep -o " $HOSTS_STATE/h$i/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
		grep -o " $HOSTS_RUN/h$i/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	done
	rm -rf "$HOSTS_STATE" "$HOSTS_RUN"
	log "hosts down"
}

cmd_hosts() {
	case "${1:-}" in
	up) hosts_up "${2:-}" ;;
	env) hosts_env ;;
	down) hosts_down ;;
	*) echo "usage: hack/testbed hosts up N|env|down" >&2; exit 2 ;;
	esac
}

#!/usr/bin/env bash
# bench/compare.sh: load Virgil's daemon (examples/sockd), Dante's danted and
# microsocks with the same socksbench scenarios, beside a direct connection,
# and write bench/results.md: one markdown table per scenario with absolute
# numbers and each result as a ratio to direct and to Dante.
#
# Every proxy runs on 127.0.0.1 on its own free port, pinned to one core
# (PROXY_CPU, default 0) with taskset; socksbench (client and target) runs
# pinned to another (LOAD_CPU, default 1). Each proxy is started afresh for
# each scenario, so that one scenario's memory does not skew the next one's
# measurements, and is stopped after it. All traffic stays on loopback; every
# wait in here is bounded in count and time, and every socksbench run is
# under timeout(1).
#
# Usage (as root the first time, to install dante-server and microsocks):
#
#	bench/compare.sh              # full run: about 30 minutes
#	QUICK=1 bench/compare.sh      # smoke run: small sizes, about 8 minutes
#
# Environment knobs (defaults for the full run; QUICK=1 shrinks them):
#	BYTES      bulk bytes per run, split over the streams   (1G;   QUICK 256M)
#	STREAMS    bulk stream counts                           (1,16)
#	DURATION   length of each connection-rate run            (10s;  QUICK 2s)
#	WORKERS    connection-rate worker counts                 (1,64,512)
#	IDLE_N     idle sessions to hold                         (9000; QUICK 500)
#	MAX_CONNS  connections at most per rate run                (40000)
#	IDLE_HOLD  how long to hold them before measuring        (130s; QUICK 2s)
#	TARGETS    which to run, space separated                 (direct virgil dante microsocks)
#	           also: gofloor, the smallest Go proxy on package net (bench/gofloor), a
#	           yardstick for what the Go runtime costs; its idle sessions hold pipes
#	ALT_ROUNDS rounds of the alternated rate run (0: none)   (3;    QUICK 1)
#	ALT_WORKERS  its worker counts, one table each          ("64 1")
#	ALT_DURATION its run length                              (8s;   QUICK 2s)
#	ALT_MAX_CONNS  connections at most per alternated run     (8000)
#	ALT_BULK   alternated bulk runs, direction:streams      ("up:1 down:1")
#	ALT_BULK_ROUNDS  rounds of each (0: none)                (3;    QUICK 1)
#	ALT_BULK_BYTES   bytes per alternated bulk run           (1G;   QUICK 256M)
#	SCENARIOS  which scenarios to run before them            (idle rate bulk)
#	PROXY_CPU / LOAD_CPU   cores for the proxies / the load  (0 / 1)
#	VIRGIL_FLAGS  sockd's flags beyond the listener          (-busy-poll=200us)
#	OUT        the markdown file to write                    (bench/results.md)
#	KEEP=1     keep the work directory (JSON, logs, configs) and print its path
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

if [[ "${QUICK:-0}" == 1 ]]; then
	BYTES="${BYTES:-256M}"
	DURATION="${DURATION:-2s}"
	ALT_ROUNDS="${ALT_ROUNDS:-1}"
	ALT_DURATION="${ALT_DURATION:-2s}"
	ALT_BULK_ROUNDS="${ALT_BULK_ROUNDS:-1}"
	ALT_BULK_BYTES="${ALT_BULK_BYTES:-256M}"
	IDLE_N="${IDLE_N:-500}"
	IDLE_HOLD="${IDLE_HOLD:-2s}"
else
	BYTES="${BYTES:-1G}"
	DURATION="${DURATION:-10s}"
	ALT_ROUNDS="${ALT_ROUNDS:-3}"
	ALT_DURATION="${ALT_DURATION:-8s}"
	ALT_BULK_ROUNDS="${ALT_BULK_ROUNDS:-3}"
	ALT_BULK_BYTES="${ALT_BULK_BYTES:-1G}"
	IDLE_N="${IDLE_N:-9000}"
	# Past the Go runtime's forced GC (every 2 minutes), which shrinks the
	# stacks that handshakes grew: the memory a long-lived daemon holds per
	# idle session. The RSS right after opening is higher for Virgil.
	IDLE_HOLD="${IDLE_HOLD:-130s}"
fi
STREAMS="${STREAMS:-1,16}"
MAX_CONNS="${MAX_CONNS:-40000}" # per rate run: bounds the TIME_WAIT sockets one run leaves
WORKERS="${WORKERS:-1,64,512}"
ALT_WORKERS="${ALT_WORKERS:-64 1}"
ALT_MAX_CONNS="${ALT_MAX_CONNS:-8000}"
ALT_BULK="${ALT_BULK:-up:1 down:1}"
SCENARIOS="${SCENARIOS-idle rate bulk}"
TARGETS="${TARGETS:-direct virgil dante microsocks}"
# The proxies get a core of their own here, the setting busy polling is for
# (see the README); VIRGIL_FLAGS= (empty) runs sockd with its defaults.
VIRGIL_FLAGS="${VIRGIL_FLAGS--busy-poll=200us}"
PROXY_CPU="${PROXY_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
OUT="${OUT:-$here/results.md}"
RUN_TIMEOUT=300 # seconds, per socksbench invocation

log() { printf 'compare.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- tools -------------------------------------------------------------------
need_pkgs=()
command -v danted >/dev/null 2>&1 || [[ -x /usr/sbin/danted ]] || need_pkgs+=(dante-server)
command -v microsocks >/dev/null 2>&1 || need_pkgs+=(microsocks)
command -v taskset >/dev/null 2>&1 || need_pkgs+=(util-linux)
if ((${#need_pkgs[@]})); then
	[[ "$(id -u)" == 0 ]] || die "missing ${need_pkgs[*]}: run as root once to apt-get install them"
	log "installing ${need_pkgs[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2
fi
DANTED="$(command -v danted || echo /usr/sbin/danted)"
MICROSOCKS="$(command -v microsocks)"
command -v go >/dev/null 2>&1 || die "go is not on PATH"

ncpu="$(nproc)"
if ((ncpu < 2)); then
	log "only $ncpu CPU: proxy and load share core 0; ratios will not mean what they should"
	PROXY_CPU=0
	LOAD_CPU=0
fi

# The proxies get the hard open-files limit (the targets are measured under
# it: 20,000 on the reference machine); so do the load tool's two ends.
ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d "${TMPDIR:-/tmp}/virgil-bench.XXXXXX")"
pids=()
cleanup() {
	local rc=$?
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	if [[ "${KEEP:-0}" == 1 ]]; then
		log "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	declare -F restore_sysctls >/dev/null && restore_sysctls
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A 10-second rate run opens some 100,000 loopback connections, each
# leaving sockets in TIME_WAIT for 60 s: without help the next run finds no
# free ephemeral port (Dante then answers "network unreachable", listeners
# fail with EADDRINUSE). As root, widen the port range and let connects
# reuse TIME_WAIT ports for the run; the old values come back on exit.
saved_sysctls=()
if [[ "$(id -u)" == 0 ]]; then
	for kv in "net.ipv4.tcp_tw_reuse=1" "net.ipv4.ip_local_port_range=15000 65000"; do
		key="${kv%%=*}"
		saved_sysctls+=("$key=$(sysctl -n "$key" | tr '\t' ' ')")
		sysctl -qw "$kv" || log "could not set $kv"
	done
fi
restore_sysctls() {
	local kv
	for kv in "${saved_sysctls[@]}"; do
		sysctl -qw "$kv" || true
	done
}

# wait_time_wait waits (at most 70 s) until fewer than $1 (default 2000)
# sockets are left in TIME_WAIT, so that one run's leftovers do not starve
# the next of ports.
wait_time_wait() {
	local n limit="${1:-2000}"
	for _ in $(seq 70); do
		n="$(ss -Htan state time-wait 2>/dev/null | wc -l)"
		((n < limit)) && return 0
		sleep 1
	done
	log "still $n sockets in TIME_WAIT; going on"
}

log "building sockd and socksbench into $work"
(cd "$repo" && go build -o "$work/sockd" ./examples/sockd && go build -o "$work/socksbench" ./examples/socksbench &&
	go build -o "$work/gofloor" ./bench/gofloor)
# The version of what was built, taken now: the tree may change while the
# run goes on, and the output file itself is not a local change.
built_from="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo 'this checkout')$(cd "$repo" && git diff --quiet HEAD -- . ':(exclude)bench/results.md' 2>/dev/null || echo ' (with local changes)')"

# --- helpers -----------------------------------------------------------------
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a loopback port nobody listens on (bounded tries), below
# the ephemeral range, so that no outgoing connection holds it either.
eph_low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
((eph_low > 12000)) || die "the ephemeral port range starts at $eph_low; need room below it"
free_port() {
	local p i
	for i in $(seq 200); do
		p=$((10000 + RANDOM % (eph_low - 10000)))
		if ! port_open "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# wait_port PORT PID: until PORT accepts, or PID died, or 10 s passed.
wait_port() {
	local i
	for i in $(seq 100); do
		port_open "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# start_proxy NAME: starts the proxy pinned to PROXY_CPU; sets PROXY_URL and
# PROXY_PID (empty for direct).
start_proxy() {
	local name=$1 port
	PROXY_URL=direct
	PROXY_PID=
	[[ "$name" == direct ]] && return 0
	port="$(free_port)"
	case "$name" in
	virgil)
		# shellcheck disable=SC2086 # VIRGIL_FLAGS is a list of flags
		taskset -c "$PROXY_CPU" "$work/sockd" -listen "127.0.0.1:$port" -log-level error $VIRGIL_FLAGS \
			>>"$work/virgil.log" 2>&1 &
		;;
	dante)
		cat >"$work/danted.conf" <<EOF
logoutput: $work/danted.log
internal: 127.0.0.1 port = $port
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0/0
	log: error
}
socks pass { from: 127.0.0.0/8 to: 0/0
	command: connect
	log: error
}
EOF
		# In the foreground (no -D); the main process forks negotiate,
		# request and io children, which socksbench finds through /proc.
		taskset -c "$PROXY_CPU" "$DANTED" -f "$work/danted.conf" -p "$work/danted.pid" \
			>>"$work/danted.stderr" 2>&1 &
		;;
	microsocks)
		taskset -c "$PROXY_CPU" "$MICROSOCKS" -i 127.0.0.1 -p "$port" \
			>>"$work/microsocks.log" 2>&1 &
		;;
	gofloor)
		taskset -c "$PROXY_CPU" "$work/gofloor" -listen "127.0.0.1:$port" \
			>>"$work/gofloor.log" 2>&1 &
		;;
	*) die "unknown target $name" ;;
	esac
	PROXY_PID=$!
	pids+=("$PROXY_PID")
	wait_port "$port" "$PROXY_PID" || die "$name did not start listening on 127.0.0.1:$port (logs in $work; KEEP=1 keeps them)"
	PROXY_URL="socks5://127.0.0.1:$port"
}

stop_proxy() {
	[[ -n "$PROXY_PID" ]] || return 0
	kill "$PROXY_PID" 2>/dev/null || true
	local i
	for i in $(seq 50); do
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$PROXY_PID" 2>/dev/null || true
	wait "$PROXY_PID" 2>/dev/null || true
	# Dante's children leave with their parent; give them a moment.
	sleep 0.3
}

# --- runs --------------------------------------------------------------------
failed=()
compare_args=()
for scenario in $SCENARIOS; do
	for name in $TARGETS; do
		wait_time_wait
		start_proxy "$name"
		args=(-proxy "$PROXY_URL" -scenario "$scenario" -json -progress 5s -limit "$((RUN_TIMEOUT - 10))s"
			-bytes "$BYTES" -streams "$STREAMS" -duration "$DURATION" -workers "$WORKERS" -max-conns "$MAX_CONNS" -idle "$IDLE_N" -idle-hold "$IDLE_HOLD")
		[[ -n "$PROXY_PID" ]] && args+=(-proxy-pid "$PROXY_PID")
		log "$scenario: $name ($PROXY_URL)"
		json="$work/$name-$scenario.json"
		rc=0
		timeout "$RUN_TIMEOUT" taskset -c "$LOAD_CPU" "$work/socksbench" "${args[@]}" \
			>"$json" 2>"$work/$name-$scenario.stderr" || rc=$?
		stop_proxy
		sed -n '/^socksbench: proxy/,$p' "$work/$name-$scenario.stderr" >&2 || true
		if ((rc == 1)); then
			failed+=("$name $scenario (a run failed)")
		elif ((rc != 0)); then
			failed+=("$name $scenario (exit $rc)")
			tail -n 5 "$work/$name-$scenario.stderr" >&2 || true
			continue # no usable JSON
		fi
		compare_args+=("$name=$json")
	done
done

# --- alternated rounds -------------------------------------------------------
# round_run BASE LABEL ARGS...: the measured socksbench run of one target in
# one alternated round, against the proxy start_proxy started, which it then
# stops; the report goes to $work/BASE.json. A failure is recorded under
# LABEL; the status is non-zero when there is no usable report.
round_run() {
	local base=$1 label=$2 rc=0
	shift 2
	timeout "$RUN_TIMEOUT" taskset -c "$LOAD_CPU" "$work/socksbench" "$@" \
		>"$work/$base.json" 2>"$work/$base.stderr" || rc=$?
	stop_proxy
	tail -n 1 "$work/$base.stderr" >&2 || true
	if ((rc != 0 && rc != 1)); then
		failed+=("$label (exit $rc)")
		return 1
	fi
	((rc == 1)) && failed+=("$label (a run failed)")
	return 0
}

# The runs above measure each target minutes apart, and this machine's speed
# drifts by 10-20% over such spans. Here the targets take turns: one
# connection-rate run each per round, so that a drift hits them alike, and
# the report gives each pair's median ratio over the rounds. Each run stops
# at ALT_MAX_CONNS connections, whose TIME_WAIT sockets (two per proxied
# connection) take ephemeral ports for a minute; before a run, what earlier
# ones left must be under 30,000 of the 50,000 ports set above, leaving room
# for the run's own 16,000 and the load tool's listener, which otherwise
# cannot even bind.
declare -A rounds_args # per worker count: name=file arguments for socksbench -compare -rounds
if ((ALT_ROUNDS > 0)); then
	wait_time_wait
	for alt_workers in $ALT_WORKERS; do
		for round in $(seq "$ALT_ROUNDS"); do
			for name in $TARGETS; do
				wait_time_wait 30000
				start_proxy "$name"
				args=(-proxy "$PROXY_URL" -scenario rate -json -progress 0 -limit "$((RUN_TIMEOUT - 10))s"
					-duration "$ALT_DURATION" -workers "$alt_workers" -max-conns "$ALT_MAX_CONNS")
				[[ -n "$PROXY_PID" ]] && args+=(-proxy-pid "$PROXY_PID")
				log "alternated rate, $alt_workers workers, round $round: $name ($PROXY_URL)"
				# A freshly started proxy is slower for its first connections
				# (Go's heap and stack pools, glibc's thread stacks); each run
				# here is short, so that start is not measured: a warm-up of
				# ALT_MAX_CONNS/4 connections goes first, then the measured run
				# of the rest.
				timeout "$RUN_TIMEOUT" taskset -c "$LOAD_CPU" "$work/socksbench" "${args[@]}" -max-conns "$((ALT_MAX_CONNS / 4))" \
					>/dev/null 2>&1 || true
				args+=(-max-conns "$((ALT_MAX_CONNS - ALT_MAX_CONNS / 4))")
				base="$name-alt$alt_workers-$round"
				if round_run "$base" "$name alternated round $round at $alt_workers workers" "${args[@]}"; then
					rounds_args[$alt_workers]+=" $name=$work/$base.json"
				fi
			done
		done
	done
fi

# The same for bulk throughput, whose ratio to direct moves with the
# machine's speed as much as the connection rate's does: per round, one
# run of each target, for each direction:streams pair in ALT_BULK.
declare -A bulk_rounds_args # per direction:streams: name=file arguments
if ((ALT_BULK_ROUNDS > 0)); then
	for spec in $ALT_BULK; do
		direction="${spec%%:*}"
		streams="${spec##*:}"
		for round in $(seq "$ALT_BULK_ROUNDS"); do
			for name in $TARGETS; do
				start_proxy "$name"
				args=(-proxy "$PROXY_URL" -scenario bulk -json -progress 0 -limit "$((RUN_TIMEOUT - 10))s"
					-bytes "$ALT_BULK_BYTES" -direction "$direction" -streams "$streams")
				[[ -n "$PROXY_PID" ]] && args+=(-proxy-pid "$PROXY_PID")
				log "alternated bulk, $direction x$streams, round $round: $name ($PROXY_URL)"
				base="$name-bulk-$direction$streams-$round"
				if round_run "$base" "$name alternated bulk $direction x$streams round $round" "${args[@]}"; then
					bulk_rounds_args[$spec]+=" $name=$work/$base.json"
				fi
			done
		done
	done
fi

# --- report ------------------------------------------------------------------
{
	echo "# Proxy comparison"
	echo
	echo "Generated by \`bench/compare.sh\`$([[ "${QUICK:-0}" == 1 ]] && echo ' with QUICK=1 (a smoke run: small sizes, short runs)') on $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo
	echo "- Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $ncpu CPUs, Linux $(uname -r), $(go version | cut -d' ' -f3)"
	echo "- Proxies pinned to CPU $PROXY_CPU, socksbench (client and its target) to CPU $LOAD_CPU; open-files limit $(ulimit -n)"
	echo "- Versions: Virgil sockd from $built_from; $(dpkg-query -W -f='dante-server ${Version}' dante-server 2>/dev/null || echo 'danted'); $(dpkg-query -W -f='microsocks ${Version}' microsocks 2>/dev/null || echo 'microsocks')"
	echo "- Virgil's sockd runs with ${VIRGIL_FLAGS:-its default flags}$([[ "$VIRGIL_FLAGS" == *busy-poll=[1-9]* ]] && echo ': busy polling, which is off by default (see the README: it suits a proxy with a core of its own, as here)')"
	if [[ " $TARGETS " == *" gofloor "* ]]; then
		echo "- gofloor (bench/gofloor) is the smallest SOCKS5 proxy on Go's package net: a goroutine per session, io.Copy each way, no policy, logging, accounting or timeouts. It is a yardstick, not a peer: Virgil's distance to it is the cost of its features, its distance to microsocks the cost of the Go runtime"
	fi
	echo "- Parameters: bulk $BYTES per run over streams $STREAMS; rate $DURATION per run at workers $WORKERS; idle $IDLE_N sessions held $IDLE_HOLD; alternated rate $ALT_ROUNDS rounds of $ALT_DURATION (at most $ALT_MAX_CONNS connections) at $ALT_WORKERS workers; alternated bulk $ALT_BULK_ROUNDS rounds of $ALT_BULK_BYTES for $ALT_BULK (direction:streams); all over SOCKS5 with no authentication"
	cc="$(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo unknown)"
	if [[ "$cc" == bbr* ]]; then
		echo "- TCP congestion control (net.ipv4.tcp_congestion_control): $cc, which paces; Virgil's sockets on loopback use reno instead (socks.NoLoopbackPacing), the other proxies and socksbench (and so direct) use $cc"
	else
		echo "- TCP congestion control (net.ipv4.tcp_congestion_control): $cc, for every target"
	fi
	echo
	if ((${#compare_args[@]})); then
		"$work/socksbench" -compare "${compare_args[@]}"
	fi
	for alt_workers in $ALT_WORKERS; do
		if [[ -n "${rounds_args[$alt_workers]:-}" ]]; then
			# shellcheck disable=SC2086 # name=file words without spaces
			"$work/socksbench" -compare -rounds ${rounds_args[$alt_workers]}
		fi
	done
	for spec in $ALT_BULK; do
		if [[ -n "${bulk_rounds_args[$spec]:-}" ]]; then
			# shellcheck disable=SC2086 # name=file words without spaces
			"$work/socksbench" -compare -rounds ${bulk_rounds_args[$spec]}
		fi
	done
	echo "Notes:"
	echo
	echo "- Each proxy is started afresh for each scenario. \"direct\" is the client talking to the target without a proxy; its bulk and rate results are the ceiling the load core reaches alone."
	echo "- Proxy CPU and memory are summed over the proxy's whole process tree (the pid and its descendants, found through /proc): Dante serves sessions from forked io-child processes (32 sessions each) beside its negotiate and request children, Virgil and microsocks are one process (microsocks: a thread per session)."
	echo "- RSS per session is the growth of summed VmRSS while holding the sessions, divided by the sessions. Summed RSS counts a page shared by forked processes once per process, which overstates Dante; PSS (from smaps_rollup) divides shared pages among the sharers and is the fairer number for a forking server. FDs per session is the growth of open descriptors in the tree."
	echo "- Connection-rate latency runs from the start of the dial (handshake included) to the close, on the load core, so it includes the client's own scheduling delay at 64 and 512 workers."
	echo "- Ratios: bulk and rate results divided by direct's and Dante's (higher is better); idle RSS divided by Dante's (lower is better). \"-\" where a reference is missing."
	if ((${#failed[@]})); then
		echo
		echo "Failed runs: ${failed[*]}."
	fi
} >"$OUT"

cat "$OUT"
log "wrote $OUT"

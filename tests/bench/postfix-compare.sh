#!/usr/bin/env bash
# Runs the same mutual-TLS SMTP load against the gateway and against a private Postfix instance (STARTTLS and
# client certificates required, relaying to smtp-sink), then prints msg/s side by side with the ratio.
# TEST ONLY: uses the public test PKI in certs/. Must run as root (Postfix starts as root); installs the Debian
# packages postfix and jq when missing. Everything it starts is stopped on exit; its files live in a temp dir.
#
# Usage: tests/bench/postfix-compare.sh [options]
#   --gateway HOST:PORT   bench an already running gateway instead of starting one
#   --gateway-pid PID     with --gateway: sample that process's RSS
#   --postfix-only        do not bench the gateway at all
#   --skip-build          use the existing target/release binaries
#   --messages N          messages per scenario (default 2000; raised to sessions x per-connection)
#   --size SIZE           message size (default 100K)
#   --sessions "A B"      session counts (default "10 50")
#   --per-connection "A B" messages per connection (default "1 100")
#   --nodelay             set TCP_NODELAY in the load generator
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CERTS="$ROOT/certs"

GATEWAY_ADDR=""
GATEWAY_PID=""
POSTFIX_ONLY=0
SKIP_BUILD=0
MESSAGES=2000
SIZE=100K
SESSIONS="10 50"
PER_CONNECTION="1 100"
LOADGEN_EXTRA=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --gateway) GATEWAY_ADDR="$2"; shift 2 ;;
        --gateway-pid) GATEWAY_PID="$2"; shift 2 ;;
        --postfix-only) POSTFIX_ONLY=1; shift ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --messages) MESSAGES="$2"; shift 2 ;;
        --size) SIZE="$2"; shift 2 ;;
        --sessions) SESSIONS="$2"; shift 2 ;;
        --per-connection) PER_CONNECTION="$2"; shift 2 ;;
        --nodelay) LOADGEN_EXTRA+=(--nodelay); shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

if [[ $EUID -ne 0 ]]; then
    echo "postfix-compare.sh must run as root (Postfix's master starts as root)" >&2
    exit 2
fi

WORK="$(mktemp -d)"
# Postfix daemons run as the postfix user and must traverse into the temp dir.
chmod 755 "$WORK"
POSTFIX_CONF="$WORK/postfix"
POSTFIX_STARTED=0
SINK_PID=""
OWN_GATEWAY_PID=""

cleanup() {
    local status=$?
    set +e
    if [[ $POSTFIX_STARTED -eq 1 ]]; then
        postfix -c "$POSTFIX_CONF" stop >/dev/null 2>&1
        local master_pid
        master_pid="$(cat "$WORK/postfix-queue/pid/master.pid" 2>/dev/null | tr -d ' ')"
        for _ in $(seq 50); do
            [[ -n "$master_pid" ]] && kill -0 "$master_pid" 2>/dev/null || break
            sleep 0.2
        done
        [[ -n "$master_pid" ]] && kill -0 "$master_pid" 2>/dev/null && postfix -c "$POSTFIX_CONF" abort >/dev/null 2>&1
    fi
    if [[ -n "$OWN_GATEWAY_PID" ]]; then
        kill -TERM "$OWN_GATEWAY_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$OWN_GATEWAY_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$OWN_GATEWAY_PID" 2>/dev/null
        wait "$OWN_GATEWAY_PID" 2>/dev/null
    fi
    if [[ -n "$SINK_PID" ]]; then
        kill -TERM "$SINK_PID" 2>/dev/null
        wait "$SINK_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------------------------ helpers
install_if_missing() { # install_if_missing COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "installing $2 ..." >&2
    # "No configuration": the package must not set up (or start) a system-wide Postfix.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >"$WORK/apt.log" 2>&1 ||
        { cat "$WORK/apt.log" >&2; return 1; }
}

free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 40000))
        if ! ss -Htln "sport = :$port" | grep -q .; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

wait_port() { # wait_port PORT PID WHAT
    for _ in $(seq 150); do
        ss -Htln "sport = :$1" | grep -q . && return 0
        if [[ -n "$2" ]] && ! kill -0 "$2" 2>/dev/null; then
            echo "$3 exited before listening on port $1" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "$3 is not listening on port $1 after 30 s" >&2
    return 1
}

postfix_queue_size() {
    find "$WORK/postfix-queue/incoming" "$WORK/postfix-queue/active" "$WORK/postfix-queue/deferred" \
        "$WORK/postfix-queue/maildrop" -type f 2>/dev/null | wc -l
}

# Lets Postfix deliver its backlog to smtp-sink, so a run does not pay for the previous one.
drain_postfix() {
    for _ in $(seq 300); do
        [[ "$(postfix_queue_size)" -eq 0 ]] && return 0
        sleep 0.2
    done
    echo "warning: Postfix queue still holds $(postfix_queue_size) messages" >&2
}

# ------------------------------------------------------------------------------------------------ build
install_if_missing postfix postfix
install_if_missing smtp-sink postfix
install_if_missing jq jq

if [[ $SKIP_BUILD -eq 0 ]]; then
    packages=(-p gateway-tests)
    [[ $POSTFIX_ONLY -eq 0 && -z "$GATEWAY_ADDR" ]] && packages+=(-p gateway)
    (cd "$ROOT" && cargo build --release "${packages[@]}")
fi
LOADGEN="$ROOT/target/release/loadgen"
GATEWAY_BIN="$ROOT/target/release/gateway"
[[ -x "$LOADGEN" ]] || { echo "missing $LOADGEN (build it or drop --skip-build)" >&2; exit 1; }

# ------------------------------------------------------------------------------------------------ smtp-sink
SINK_PORT="$(free_port)"
# -u: smtp-sink refuses to keep root privileges; 1000 = listen backlog.
smtp-sink -u postfix "127.0.0.1:$SINK_PORT" 1000 >"$WORK/smtp-sink.log" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT" "$SINK_PID" smtp-sink

# ------------------------------------------------------------------------------------------------ Postfix
POSTFIX_PORT="$(free_port)"
mkdir -p "$POSTFIX_CONF" "$WORK/postfix-queue" "$WORK/postfix-data"
chown postfix "$WORK/postfix-data"
cat >"$POSTFIX_CONF/main.cf" <<EOF
# Private benchmark instance (generated; TEST PKI only).
compatibility_level = 3.6
config_directory = $POSTFIX_CONF
queue_directory = $WORK/postfix-queue
data_directory = $WORK/postfix-data
# Postfix only writes a log file under these prefixes (default /var, /dev/stdout).
maillog_file_prefixes = $WORK
maillog_file = $WORK/postfix.log
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix-bench.mssante.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:$SINK_PORT
smtp_tls_security_level = none
smtp_destination_concurrency_limit = 50
default_process_limit = 200
message_size_limit = 52428800
biff = no
# Same policy as the gateway: TLS mandatory, client certificate mandatory and verified.
smtpd_tls_security_level = encrypt
smtpd_tls_ask_ccert = yes
smtpd_tls_req_ccert = yes
smtpd_tls_chain_files = $CERTS/tls/gateway.key, $CERTS/tls/gateway.pem
smtpd_tls_CAfile = $CERTS/ca/bundle.pem
smtpd_tls_loglevel = 0
smtpd_tls_session_cache_database =
EOF
cat >"$POSTFIX_CONF/master.cf" <<EOF
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
postfix -c "$POSTFIX_CONF" start >"$WORK/postfix-start.log" 2>&1 ||
    { cat "$WORK/postfix-start.log" >&2; [[ -f "$WORK/postfix.log" ]] && cat "$WORK/postfix.log" >&2; exit 1; }
POSTFIX_STARTED=1
wait_port "$POSTFIX_PORT" "" Postfix
POSTFIX_MASTER_PID="$(tr -d ' ' <"$WORK/postfix-queue/pid/master.pid")"

# ------------------------------------------------------------------------------------------------ gateway
if [[ $POSTFIX_ONLY -eq 0 && -z "$GATEWAY_ADDR" ]]; then
    [[ -x "$GATEWAY_BIN" ]] || { echo "missing $GATEWAY_BIN" >&2; exit 1; }
    GATEWAY_PORT="$(free_port)"
    # A copy with a free port, a state dir in $WORK and absolute certificate paths.
    sed -e "s|^address = .*|address = \"127.0.0.1:$GATEWAY_PORT\"|" \
        -e "s|^state_dir = .*|state_dir = \"$WORK/gateway-state\"|" \
        -e "s|^spool_dir = .*|spool_dir = \"$WORK/gateway-state/spool\"|" \
        -e "s|\"\\.\\./\\.\\./certs/|\"$CERTS/|g" \
        "$HERE/gateway-bench.toml" >"$WORK/gateway.toml"
    "$GATEWAY_BIN" run --config "$WORK/gateway.toml" >"$WORK/gateway.log" 2>&1 &
    OWN_GATEWAY_PID=$!
    wait_port "$GATEWAY_PORT" "$OWN_GATEWAY_PID" gateway || { cat "$WORK/gateway.log" >&2; exit 1; }
    GATEWAY_ADDR="127.0.0.1:$GATEWAY_PORT"
    GATEWAY_PID="$OWN_GATEWAY_PID"
fi

# ------------------------------------------------------------------------------------------------ runs
mkdir -p "$WORK/results"
run_load() { # run_load NAME ADDRESS SESSIONS PER_CONNECTION [loadgen args...]
    local name="$1" address="$2" sessions="$3" per="$4"
    shift 4
    local messages=$((MESSAGES > sessions * per ? MESSAGES : sessions * per))
    local out="$WORK/results/$name-$sessions-$per.json"
    # Exit status 1 means "some messages failed": the JSON still says which, so keep going.
    "$LOADGEN" --server "$address" --sessions "$sessions" --per-connection "$per" --messages "$messages" \
        --size "$SIZE" --quiet --json ${LOADGEN_EXTRA[@]+"${LOADGEN_EXTRA[@]}"} "$@" >"$out" || true
    if ! jq -e . "$out" >/dev/null 2>&1; then
        echo "$name: load generator produced no report" >&2
        rm -f "$out"
        return 0
    fi
    jq -r --arg name "$name" \
        '"\($name): \(.sessions) sessions x \(.per_connection)/conn: \(.accepted)/\(.messages) ok, \(.messages_per_s*10|round/10) msg/s, accept p99 \(.latency.accept.p99_ms) ms, errors \(.errors|tostring)"' \
        "$out" >&2
}

for sessions in $SESSIONS; do
    for per in $PER_CONNECTION; do
        drain_postfix
        # Postfix is master plus one smtpd per session: sum the tree (shared pages counted per process).
        run_load postfix "127.0.0.1:$POSTFIX_PORT" "$sessions" "$per" --to "sink@relay.mssante.test" \
            --watch-pid "$POSTFIX_MASTER_PID" --watch-children
        if [[ $POSTFIX_ONLY -eq 0 ]]; then
            watch=()
            if [[ -n "$GATEWAY_PID" ]]; then watch=(--watch-pid "$GATEWAY_PID"); fi
            run_load gateway "$GATEWAY_ADDR" "$sessions" "$per" ${watch[@]+"${watch[@]}"}
        fi
    done
done

# ------------------------------------------------------------------------------------------------ table
value() { # value FILE JQ_EXPR
    if [[ -f "$1" ]]; then jq -r "$2" "$1"; else echo "-"; fi
}
echo
printf '%-8s %-8s | %11s %11s %6s | %13s %13s | %11s %11s\n' sessions msg/conn "postfix m/s" "gateway m/s" \
    ratio "postfix p99ms" "gateway p99ms" "postfix PSS" "gateway PSS"
for sessions in $SESSIONS; do
    for per in $PER_CONNECTION; do
        postfix_file="$WORK/results/postfix-$sessions-$per.json"
        gateway_file="$WORK/results/gateway-$sessions-$per.json"
        postfix_rate="$(value "$postfix_file" '.messages_per_s*10|round/10')"
        gateway_rate="$(value "$gateway_file" '.messages_per_s*10|round/10')"
        ratio="-"
        if [[ "$gateway_rate" != "-" && "$postfix_rate" != "-" ]]; then
            ratio="$(jq -nr --argjson g "$gateway_rate" --argjson p "$postfix_rate" \
                'if $p > 0 then ($g/$p*100|round/100) else "-" end')"
        fi
        printf '%-8s %-8s | %11s %11s %6s | %13s %13s | %11s %11s\n' "$sessions" "$per" "$postfix_rate" \
            "$gateway_rate" "$ratio" "$(value "$postfix_file" '.latency.accept.p99_ms')" \
            "$(value "$gateway_file" '.latency.accept.p99_ms')" \
            "$(value "$postfix_file" '.server_rss.peak_pss_kib // "-"')" \
            "$(value "$gateway_file" '.server_rss.peak_pss_kib // "-"')"
    done
done
echo "(p99 = accept latency, from the final \".\" to the 250; PSS = peak proportional set size in KiB sampled every"
echo " 100 ms, Postfix summed over master and its children; message size $SIZE; ratio = gateway/postfix msg/s)"

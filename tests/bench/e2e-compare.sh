#!/usr/bin/env bash
# End-to-end benchmark of the gateway: signed XDM messages (about 100 KB) from concurrent mutual-TLS
# senders, through the checks, the queue, the deposit into dmp-sim and the relay to a maildir, once with
# the embedded backend and once with RabbitMQ (+ PostgreSQL ledger). Reports per backend: msg/s accepted,
# p50/p99 from end of DATA to 250, p50/p99 from 250 to deposited (ledger times: deposited minus received
# per queue id, from `gateway audit export --format json`), and the gateway's peak RSS.
# TEST ONLY: uses the public test PKI in certs/ and synthetic documents. Needs jq, RabbitMQ and PostgreSQL
# on 127.0.0.1 for the amqp backend. Everything it starts is stopped on exit; its files live in a temp dir.
#
# Usage: tests/bench/e2e-compare.sh [options]
#   --messages N        messages per backend (default 500)
#   --sessions N        concurrent senders (default 10)
#   --pdf-size BYTES    size of the PDF rendering (default 33000: with the PDF in the XDM and attached, as
#                       `gateway send --pdf` does, a message of about 100 KB)
#   --cda FILE          CDA put in the XDM (default: tests/fixtures/cda/lettre-de-liaison.xml)
#   --backends "A B"    backends to run (default "embedded amqp")
#   --with-postfix      also run tests/bench/postfix-compare.sh --postfix-only with the same size and
#                       sessions (needs root)
#   --skip-build        use the existing target/release binaries
#   --debug             use (and build) target/debug binaries: checks the script, figures meaningless
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CERTS="$ROOT/certs"

MESSAGES=500
SESSIONS=10
PDF_SIZE=33000
CDA=""
BACKENDS="embedded amqp"
WITH_POSTFIX=0
SKIP_BUILD=0
PROFILE=release

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --messages) MESSAGES="$2"; shift 2 ;;
        --sessions) SESSIONS="$2"; shift 2 ;;
        --pdf-size) PDF_SIZE="$2"; shift 2 ;;
        --cda) CDA="$2"; shift 2 ;;
        --backends) BACKENDS="$2"; shift 2 ;;
        --with-postfix) WITH_POSTFIX=1; shift ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --debug) PROFILE=debug; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
command -v jq >/dev/null || { echo "e2e-compare.sh needs jq" >&2; exit 2; }

WORK="$(mktemp -d)"
RUN_ID="bench$$"
PIDS=()
cleanup() {
    local status=$?
    set +e
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ " $BACKENDS " == *" amqp "* && -x "${E2E_ENV:-}" ]]; then
        "$E2E_ENV" cleanup --amqp-prefix "$RUN_ID" --postgres-schema "$RUN_ID" >/dev/null 2>&1
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

wait_for() { # wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s
    local seconds="$1" what="$2"
    shift 2
    for _ in $(seq $((seconds * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    echo "timed out after ${seconds} s waiting for $what" >&2
    return 1
}

# ------------------------------------------------------------------------------------------------ build
if [[ $SKIP_BUILD -eq 0 ]]; then
    release=(--release)
    [[ $PROFILE == debug ]] && release=()
    (cd "$ROOT" && cargo build ${release[@]+"${release[@]}"} -p gateway -p dmp-connector -p gateway-tests)
fi
BIN="$ROOT/target/$PROFILE"
GATEWAY="$BIN/gateway" DMP_SIM="$BIN/dmp-sim" LOADGEN="$BIN/loadgen" E2E_ENV="$BIN/e2e-env"
for binary in "$GATEWAY" "$DMP_SIM" "$LOADGEN" "$E2E_ENV"; do
    [[ -x "$binary" ]] || { echo "missing $binary (build it or drop --skip-build)" >&2; exit 1; }
done

# ------------------------------------------------------------------------------------------------ message
if [[ -z "$CDA" ]]; then
    CDA="$ROOT/tests/fixtures/cda/lettre-de-liaison.xml"
    [[ -f "$CDA" ]] || { echo "no $CDA; give --cda FILE" >&2; exit 1; }
fi
# A PDF-looking filler that does not compress, so the message keeps its size on the wire.
{ printf '%%PDF-1.4\n%%synthetic rendering, TEST ONLY\n'; head -c "$PDF_SIZE" /dev/urandom; printf '\n%%%%EOF\n'; } \
    >"$WORK/rendering.pdf"
# One message per document: the gateway deposits a document once, so copies of one message would
# measure the deduplication, not the deposit. Each gets its own CDA id (hence DMP uniqueId).
CDA_ID="$(sed -n 's/^ *<id root="\([0-9.]*\)"\/>.*/\1/p' "$CDA" | head -n 1)"
[[ -n "$CDA_ID" ]] || { echo "no <id root=...> in $CDA" >&2; exit 1; }
mkdir -p "$WORK/messages"
make_message() { # make_message N
    sed "s/\"$CDA_ID\"/\"$CDA_ID.$RUN_NUMBER.$1\"/" "$CDA" >"$WORK/messages/$1.xml"
    "$GATEWAY" send --from secretariat@hopital-a.mssante.test --to secretariat@clinique-d.mssante.test \
        --sign-cert "$CERTS/smime/sign-hopital-a.pem" --sign-key "$CERTS/smime/sign-hopital-a.key" \
        --cda "$WORK/messages/$1.xml" --pdf "$WORK/rendering.pdf" --output "$WORK/messages/$1.eml" >/dev/null
}
export -f make_message
export GATEWAY CERTS WORK CDA CDA_ID RUN_NUMBER="$$"
echo "building $MESSAGES signed messages ..." >&2
seq "$MESSAGES" | xargs -P "$(nproc)" -I{} bash -c 'make_message {}'
MESSAGE_ARGS=()
for file in "$WORK"/messages/*.eml; do MESSAGE_ARGS+=(--message-file "$file"); done
MESSAGE_SIZE="$(stat -c %s "$WORK/messages/1.eml")"
echo "messages: $MESSAGE_SIZE bytes each (signed; XDM of $(basename "$CDA") + a ${PDF_SIZE} B PDF, the PDF also attached)" >&2

# ------------------------------------------------------------------------------------------------ runs
spool_left() { find "$1/var/spool/queue" -name '*.msg' 2>/dev/null | wc -l; }

run_backend() { # run_backend NAME
    local name="$1" dir="$WORK/$1"
    mkdir -p "$dir/dmp-sim"
    "$DMP_SIM" --listen 127.0.0.1:0 --store "$dir/dmp-sim/store" --tls-cert "$CERTS/tls/gateway.pem" \
        --tls-key "$CERTS/tls/gateway.key" --client-ca "$CERTS/ca/bundle.pem" --crl "$CERTS/crl/org.crl.pem" \
        --crl "$CERTS/crl/root.crl.pem" >"$dir/dmp-sim.log" 2>&1 &
    local sim_pid=$!
    PIDS+=("$sim_pid")
    wait_for 20 "dmp-sim to listen" grep -qs "dmp-sim listening on" "$dir/dmp-sim.log"
    local sim_port
    sim_port="$(sed -n 's/.*dmp-sim listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$dir/dmp-sim.log" | head -n 1)"

    local port implicit admin backend_args=()
    port="$(free_port)" implicit="$(free_port)" admin="$(free_port)"
    if [[ "$name" == amqp ]]; then
        backend_args=(--amqp-prefix "$RUN_ID" --postgres-schema "$RUN_ID")
    fi
    local config
    config="$("$E2E_ENV" config --dir "$dir" --smtp-port "$port" --implicit-port "$implicit" --admin-port "$admin" \
        --dmp-endpoint "https://127.0.0.1:$sim_port/repository" ${backend_args[@]+"${backend_args[@]}"})"
    "$GATEWAY" run --config "$config" >"$dir/gateway.log" 2>&1 &
    local gateway_pid=$!
    PIDS+=("$gateway_pid")
    wait_for 30 "the gateway to listen" bash -c "ss -Htln 'sport = :$port' | grep -q ." ||
        { cat "$dir/gateway.log" >&2; return 1; }

    "$LOADGEN" --server "127.0.0.1:$port" --sessions "$SESSIONS" --messages "$MESSAGES" --per-connection 1 \
        ${MESSAGE_ARGS[@]+"${MESSAGE_ARGS[@]}"} --to secretariat@clinique-d.mssante.test --watch-pid "$gateway_pid" \
        --quiet --json >"$dir/load.json" || true
    jq -e . "$dir/load.json" >/dev/null || { echo "$name: no load report" >&2; return 1; }
    wait_for 600 "$name to drain its spool" bash -c "[[ \$(find '$dir/var/spool/queue' -name '*.msg' | wc -l) -eq 0 ]]" ||
        echo "$name: $(spool_left "$dir") messages still in the spool" >&2
    local hwm
    hwm="$(awk '/^VmHWM:/ {print $2}' "/proc/$gateway_pid/status" 2>/dev/null || echo -)"
    "$GATEWAY" audit --config "$config" export --format json >"$dir/ledger.json"
    # 250 -> deposited per queue id: the first deposited entry minus the received entry (milliseconds).
    jq --argjson hwm "${hwm:-null}" --slurpfile load "$dir/load.json" '
        def pct(p): if length == 0 then null else sort | .[((length - 1) * p | floor)] end;
        (map(select(.kind == "received")) | map({key: .queue_id, value: .time_ms}) | from_entries) as $received
        | (map(select(.kind == "deposited")) | group_by(.queue_id)
           | map(.[0] as $d | select($received[$d.queue_id] != null) | $d.time_ms - $received[$d.queue_id])) as $lat
        | {
            accepted: $load[0].accepted, failed: $load[0].failed, msg_per_s: $load[0].messages_per_s,
            accept_p50_ms: $load[0].latency.accept.p50_ms, accept_p99_ms: $load[0].latency.accept.p99_ms,
            deposited: ($lat | length), deposit_p50_ms: ($lat | pct(0.5)), deposit_p99_ms: ($lat | pct(0.99)),
            rss_peak_kib_during_load: $load[0].server_rss.peak_kib, vm_hwm_kib: $hwm,
            errors: $load[0].errors
          }' "$dir/ledger.json" >"$dir/summary.json"
    kill -TERM "$gateway_pid" "$sim_pid" 2>/dev/null || true
    wait "$gateway_pid" "$sim_pid" 2>/dev/null || true
}

for backend in $BACKENDS; do
    echo "running $backend ..." >&2
    run_backend "$backend"
done

# ------------------------------------------------------------------------------------------------ table
echo
printf '%-9s | %8s %8s | %9s | %12s %12s | %13s %13s | %11s\n' backend accepted failed "msg/s" \
    "DATA->250 p50" "p99 (ms)" "250->DMP p50" "p99 (ms)" "peak RSS KiB"
for backend in $BACKENDS; do
    summary="$WORK/$backend/summary.json"
    [[ -f "$summary" ]] || { printf '%-9s | (no result)\n' "$backend"; continue; }
    jq -r --arg b "$backend" '[$b, .accepted, .failed, (.msg_per_s*10|round/10), .accept_p50_ms, .accept_p99_ms,
        .deposit_p50_ms, .deposit_p99_ms, (.vm_hwm_kib // .rss_peak_kib_during_load)] | map(tostring) | @tsv' "$summary" |
        awk -F'\t' '{printf "%-9s | %8s %8s | %9s | %12s %12s | %13s %13s | %11s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9}'
    jq -e '.errors | length > 0' "$summary" >/dev/null && echo "  $backend errors: $(jq -c .errors "$summary")"
done
echo "($MESSAGES signed XDM messages of $MESSAGE_SIZE B per backend, $SESSIONS concurrent mutual-TLS senders, one"
echo " message per connection; 250->DMP from the ledger's received and first deposited entries per queue id;"
echo " peak RSS = the gateway's VmHWM; every message carries its own document)"

if [[ $WITH_POSTFIX -eq 1 ]]; then
    echo
    echo "Postfix relaying the same size and concurrency (tests/bench/postfix-compare.sh --postfix-only):"
    "$HERE/postfix-compare.sh" --postfix-only --messages "$MESSAGES" --size "$MESSAGE_SIZE" \
        --sessions "$SESSIONS" --per-connection 1 --skip-build
fi

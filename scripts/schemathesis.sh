#!/usr/bin/env bash
# Fuzzes a running bellbook against its own OpenAPI document with
# schemathesis (issue 9): every generated request must get an answer that
# is no 5xx and agrees with the document (status, content type, body
# schema). Bounded: a fixed seed, a cap on examples per operation and on
# the whole run's time. Run by .ci/run after `cargo test`; by hand:
#     pip install schemathesis==4.32.5 && scripts/schemathesis.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."

binary="${1:-target/debug/bellbook}"
if [ ! -x "$binary" ]; then
    cargo build
    binary=target/debug/bellbook
fi
work="$(mktemp -d)"
log="$work/server.log"
# The demo account (its key is fixed) on a database of its own; no rate
# limit, so the fuzzer's bursts are answered rather than refused.
"$binary" serve --demo --rate-limit-rps 0 --listen 127.0.0.1:0 \
    --database-url "sqlite://$work/bellbook.db" >"$work/stdout" 2>"$log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
    if grep -q "^Listening on" "$work/stdout" 2>/dev/null; then break; fi
    sleep 0.1
done
base="$(sed -n 's/^Listening on //p' "$work/stdout")"
if [ -z "$base" ]; then
    echo "schemathesis.sh: the server did not start" >&2
    cat "$log" >&2
    exit 1
fi
key="$(sed -n 's/^Demo account loaded: API key //p' "$work/stdout")"

# The coverage phase is left out: on CPython 3.11 it trips an interpreter
# error inside hypothesis ("AST constructor recursion depth mismatch")
# that has nothing to do with the API under test. The health checks left
# out judge the generator (an e-mail pattern it finds hard to satisfy),
# not the server.
st run "$base/v1/openapi.json" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,fuzzing,stateful \
    --max-examples 25 \
    --suppress-health-check filter_too_much,too_slow \
    --seed 20261203 \
    --max-time 150 \
    --workers 2 \
    --warnings off

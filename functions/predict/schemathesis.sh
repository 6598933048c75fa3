#!/usr/bin/env bash
# The API contract against the real server: trains the embedded sample questions
# (`tagger quickstart --no-serve`), serves the model with `tagger serve` on a free port, runs
# schemathesis (PyPI) with every check against the OpenAPI document the server itself serves at
# /openapi.json, and stops the server. Exits non-zero on any schemathesis failure.
#
#   bash functions/predict/schemathesis.sh [extra schemathesis run options]
#
# schemathesis goes into its own virtualenv (target/schemathesis-venv): its dependencies
# (packaging, pytest) would otherwise replace versions that checkov, used by infra/check.sh, needs.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'schemathesis>=4,<5'
fi
"$venv/bin/schemathesis" --version

cargo build -q -p tagger-cli
tagger=target/debug/tagger
work=target/schemathesis
rm -rf "$work"
mkdir -p "$work"
"$tagger" quickstart --no-serve --dir "$work" >/dev/null

: >"$work/serve.out"
"$tagger" serve --model "$work/bucket/models" --port 0 >"$work/serve.out" 2>"$work/serve.log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

port=
for _ in $(seq 300); do
    port=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/serve.out" | head -1)
    [ -n "$port" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "tagger serve printed no address" >&2; exit 1; }

# From the work folder, where schemathesis keeps its example database (.schemathesis/).
root=$(pwd)
cd "$work"
"$root/$venv/bin/schemathesis" --config-file "$root/functions/predict/schemathesis.toml" \
    run "http://127.0.0.1:$port/openapi.json" \
    --checks all \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --report junit --report-dir report \
    "$@"

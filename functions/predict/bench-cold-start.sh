#!/usr/bin/env bash
# Cold start and peak RSS of the real `predict` process, driven through the Lambda Runtime API
# emulator of cargo-lambda (`cargo lambda watch --only-lambda-apis`: the emulator only, the
# function is the binary given here, started by this script).
#
#   functions/predict/bench-cold-start.sh <predict binary> <model folder> [runs]
#
# cold start = from spawning the process to the first successful answer (init, model load,
# runtime registration, first request). Peak RSS = the process's VmHWM after that answer.
# Build the binary first, e.g. `cargo build --profile bench -p predict` (thin LTO; the release
# profile's fat LTO gives the deployed numbers but takes minutes). The model folder holds
# latest.json (e.g. target/tagger-quickstart/bucket/models after `tagger quickstart --no-serve`).
set -euo pipefail
bin=$(realpath "$1"); models=$(realpath "$2"); runs=${3:-5}
port=${PORT:-9311}
cd "$(dirname "$0")"
cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >/tmp/predict-cold-emulator.log 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null || true' EXIT
# Ready once the port accepts connections (an HTTP request to `/` is held open by the emulator).
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
body='{"question": "How long can I keep homemade chicken stock in the fridge before it goes bad?"}'
for run in $(seq "$runs"); do
  start=$(date +%s%N)
  AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_NAME=_ \
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" MODEL_URI="file://$models" RUST_LOG=warn \
    "$bin" >/tmp/predict-cold-function.log 2>&1 &
  pid=$!
  answer=$(curl -s --max-time 30 -X POST "http://127.0.0.1:$port/lambda-url/_/predict" \
                -H 'content-type: application/json' -d "$body" -w ' HTTP%{http_code}')
  end=$(date +%s%N)
  hwm=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$pid/status" 2>/dev/null || echo "?")
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  echo "run $run: cold start $(( (end - start) / 1000000 )) ms, peak RSS $hwm, answer: ${answer:0:120}"
done

#!/usr/bin/env bash
# Cold start and peak RSS of the real `predict` process, driven through the Lambda Runtime API
# emulator of cargo-lambda (`cargo lambda watch --only-lambda-apis`: the emulator only, the
# function is the binary given here, started by this script), with the model read from a local
# folder (`MODEL_URI=file://...`) and from moto's S3 server on 127.0.0.1 (`MODEL_URI=s3://...`).
#
#   functions/predict/bench-cold-start.sh [-n RUNS] [-b NAME=BINARY[,SUFFIX]]... MODEL_FOLDER...
#
# cold start = from spawning the process to the first successful answer (init, model load,
# runtime registration, first request). Peak RSS = the process's VmHWM after that answer. CPU =
# the time the process's threads ran on a CPU until then (`/proc/<pid>/task/*/schedstat`): on a
# shared machine wall time includes waiting for a core, CPU time does not.
# Each MODEL_FOLDER holds latest.json and <version>/model.bin (a `tagger train --out` folder, or
# target/tagger-quickstart/bucket/models after `tagger quickstart --no-serve`). Several binaries
# (`-b main=/tmp/predict-main -b new=target/release/predict`) take turns run by run, so a busy
# machine slows them alike; a binary given as `NAME=BINARY,SUFFIX` loads `MODEL_FOLDER$SUFFIX`
# instead (an older build that reads only an older artifact format: `-b main=/tmp/main,-v2`). Default binary: target/release/predict (`cargo build --release -p
# predict`, the deployed profile). Needs cargo-lambda; the s3 rows need moto_server and boto3
# (`pip install 'moto[server]'`), else they are skipped with a note.
set -euo pipefail
runs=10
bins=()
while getopts "n:b:" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    # The binary's path made absolute: the script runs from functions/predict.
    b) spec=${OPTARG#*=}
       bins+=("${OPTARG%%=*}=$(realpath "${spec%%,*}")${spec#"${spec%%,*}"}") ;;
    *) echo "usage: $0 [-n RUNS] [-b NAME=BINARY[,SUFFIX]]... MODEL_FOLDER..." >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-n RUNS] [-b NAME=BINARY[,SUFFIX]]... MODEL_FOLDER..." >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
[ ${#bins[@]} -gt 0 ] || bins=("predict=$root/target/release/predict")
name_of() { echo "${1%%=*}"; }
bin_of() { local b=${1#*=}; echo "${b%%,*}"; }
suffix_of() { case $1 in *,*) echo "${1##*,}" ;; esac; }
# Every folder some binary loads, absolute.
folders=()
for f in "$@"; do
  for b in "${bins[@]}"; do folders+=("$(cd "$f$(suffix_of "$b")" && pwd)"); done
done
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=${PORT:-$(free_port)}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

cd "$root/functions/predict"
cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >"$work/emulator.log" 2>&1 &
pids+=($!)
wait_port "$port" || { echo "the emulator did not start: $(cat "$work/emulator.log")" >&2; exit 1; }

sources=(file)
if command -v moto_server >/dev/null && python3 -c 'import boto3' 2>/dev/null; then
  s3port=$(free_port)
  moto_server -H 127.0.0.1 -p "$s3port" >"$work/moto.log" 2>&1 &
  pids+=($!)
  wait_port "$s3port" || { echo "moto did not start: $(cat "$work/moto.log")" >&2; exit 1; }
  export AWS_ENDPOINT_URL="http://127.0.0.1:$s3port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
         AWS_REGION=us-east-1
  # Each model folder under s3://bench<folder path>/, as the train function publishes it.
  python3 - "${folders[@]}" <<'EOF'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
s3.create_bucket(Bucket="bench")
for folder in set(sys.argv[1:]):
    for dirpath, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(dirpath, f)
            s3.upload_file(path, "bench", path.lstrip("/"))
EOF
  sources+=(s3)
else
  echo "note: moto_server or boto3 missing: s3:// rows skipped" >&2
fi

body='{"question": "How long can I keep homemade chicken stock in the fridge before it goes bad?"}'
# One cold start: prints "<ms> <peak RSS kB> <CPU µs>".
cold_start() {
  local bin=$1 uri=$2 start end pid answer hwm cpu
  start=$(date +%s%N)
  AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_NAME=_ \
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" MODEL_URI="$uri" RUST_LOG=warn \
    "$bin" >"$work/function.log" 2>&1 &
  pid=$!
  answer=$(curl -s --max-time 30 -X POST "http://127.0.0.1:$port/lambda-url/_/predict" \
                -H 'content-type: application/json' -d "$body" -w ' HTTP%{http_code}') || true
  end=$(date +%s%N)
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  cpu=$(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{ns += $1} END {print int(ns / 1000)}')
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  case $answer in
    *HTTP200) ;;
    *) echo "failed: $bin $uri: $answer $(cat "$work/function.log")" >&2; return 1 ;;
  esac
  echo "$(( (end - start) / 1000000 )) $hwm $cpu"
}

printf '%-10s %-6s %-8s %11s %9s %9s %9s %17s\n' model source binary "artifact B" "wall ms" "min-max" "CPU ms" "peak RSS MiB"
for f in "$@"; do
  model=$(basename "$f")
  for source in "${sources[@]}"; do
    for b in "${bins[@]}"; do : >"$work/$(name_of "$b").runs"; done
    uri_for() {
      local folder
      folder=$(cd "$f$(suffix_of "$1")" && pwd)
      case $source in
        file) echo "file://$folder" ;;
        s3) echo "s3://bench$folder" ;;
      esac
    }
    # One unmeasured start per binary warms the page cache, as a provisioned sandbox has it.
    for b in "${bins[@]}"; do cold_start "$(bin_of "$b")" "$(uri_for "$b")" >/dev/null; done
    for _ in $(seq "$runs"); do
      for b in "${bins[@]}"; do
        cold_start "$(bin_of "$b")" "$(uri_for "$b")" >>"$work/$(name_of "$b").runs"
      done
    done
    for b in "${bins[@]}"; do
      folder=$(cd "$f$(suffix_of "$b")" && pwd)
      key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$folder/latest.json")
      python3 - "$model" "$source" "$(name_of "$b")" "$(stat -c %s "$folder/$key")" \
        "$work/$(name_of "$b").runs" <<'EOF'
import statistics, sys
model, source, name, size, path = sys.argv[1:]
rows = [tuple(map(int, l.split())) for l in open(path) if l.strip()]
ms = sorted(r[0] for r in rows)
rss = sorted(r[1] for r in rows)
cpu = sorted(r[2] / 1000 for r in rows)
print(f"{model:<10} {source:<6} {name:<8} {int(size):>11,} {statistics.median(ms):>9.0f} "
      f"{f'{ms[0]}-{ms[-1]}':>9} {statistics.median(cpu):>9.1f} "
      f"{statistics.median(rss) / 1024:>8.1f} (max {rss[-1] / 1024:.1f})")
EOF
    done
  done
done
